-- leaveLine: KEYS = line, lineseen, linedata; ARGV = prefix, token. Removes the entry; returns
-- its JSON, or false.
local token = ARGV[2]
local raw = redis.call('HGET', KEYS[3], token)
if not raw then return false end
redis.call('HDEL', KEYS[3], token)
redis.call('ZREM', KEYS[1], token)
redis.call('ZREM', KEYS[2], token)
return raw
