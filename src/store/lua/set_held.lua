-- setHeld: KEYS = linedata; ARGV = prefix, token, heldSince or '' (clears it). Nothing when not
-- in line.
local token = ARGV[2]
local raw = redis.call('HGET', KEYS[1], token)
if not raw then return 0 end
local entry = cjson.decode(raw)
if ARGV[3] == '' then entry.heldSince = nil else entry.heldSince = tonumber(ARGV[3]) end
redis.call('HSET', KEYS[1], token, encode_flat(entry))
return 1
