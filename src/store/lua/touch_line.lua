-- touchLine: ARGV = prefix, token, now. Sets lastSeenAt; returns the entry JSON or false.
local token = ARGV[2]
local raw = redis.call('HGET', P .. 'linedata', token)
if not raw then return false end
local entry = cjson.decode(raw)
entry.lastSeenAt = tonumber(ARGV[3])
raw = encode_flat(entry)
redis.call('HSET', P .. 'linedata', token, raw)
return raw
