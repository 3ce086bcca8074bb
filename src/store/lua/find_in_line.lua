-- findInLine: KEYS = line, linedata; ARGV = prefix, token. Reads only: { entry JSON, position }
-- or false, both from one moment.
local raw = redis.call('HGET', KEYS[2], ARGV[2])
if not raw then return false end
return { raw, redis.call('ZRANK', KEYS[1], ARGV[2]) + 1 }
