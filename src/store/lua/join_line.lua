-- joinLine: ARGV = prefix, token, now, first estimate (seconds). Appends an entry with the next
-- seq and returns its JSON; a token already in line keeps its place and gets its entry back.
local token, now, estimate = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local present = redis.call('HGET', P .. 'linedata', token)
if present then return present end
local seq = redis.call('INCR', P .. 'lineseq')
local entry = encode_flat({
  token = token, seq = seq, joinedAt = now, lastSeenAt = now, firstEstimateSeconds = estimate,
})
redis.call('HSET', P .. 'linedata', token, entry)
return entry
