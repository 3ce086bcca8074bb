-- joinLine: KEYS = line, lineseen, linedata, lineseq; ARGV = prefix, token, now, first estimate
-- (seconds), maxLength, dueAt or ''. Appends an entry with the next seq unless the line holds maxLength
-- already (checked and added in one script, so receptions sharing this Redis never overfill it).
-- Returns { 'joined', entry JSON, position } or { 'full', length }; a token already in line keeps
-- its place and gets its entry back.
local line, seen, data = KEYS[1], KEYS[2], KEYS[3]
local token, now, estimate = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local max_length = tonumber(ARGV[5])
local present = redis.call('HGET', data, token)
if present then return { 'joined', present, redis.call('ZRANK', line, token) + 1 } end
local length = redis.call('ZCARD', line)
if length >= max_length then return { 'full', length } end
local seq = redis.call('INCR', KEYS[4])
local entry = encode_flat({
  token = token, seq = seq, joinedAt = now, lastSeenAt = now, firstEstimateSeconds = estimate,
  dueAt = tonumber(ARGV[6]),
})
redis.call('HSET', data, token, entry)
redis.call('ZADD', line, json_number(seq), token)
redis.call('ZADD', seen, json_number(now), token)
return { 'joined', entry, length + 1 }
