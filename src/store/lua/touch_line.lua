-- touchLine: KEYS = line, lineseen, linedata; ARGV = prefix, token, now, dueAt or '' (leaves it).
-- Sets lastSeenAt (and the token's score in lineseen, the sweep order) and dueAt when given;
-- returns { entry JSON, position } or false.
local line, seen, data, token = KEYS[1], KEYS[2], KEYS[3], ARGV[2]
local raw = redis.call('HGET', data, token)
if not raw then return false end
local entry = cjson.decode(raw)
entry.lastSeenAt = tonumber(ARGV[3])
if ARGV[4] ~= '' then entry.dueAt = tonumber(ARGV[4]) end
raw = encode_flat(entry)
redis.call('HSET', data, token, raw)
redis.call('ZADD', seen, json_number(entry.lastSeenAt), token)
return { raw, redis.call('ZRANK', line, token) + 1 }
