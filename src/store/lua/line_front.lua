-- lineFront: KEYS = line, linedata; ARGV = prefix, limit. Reads only: the JSON of the first
-- `limit` entries, earliest first (ZRANGE is O(log N + k)).
local limit = tonumber(ARGV[2])
if limit < 1 then return {} end
local tokens = redis.call('ZRANGE', KEYS[1], 0, limit - 1)
local out = {}
-- HMGET in chunks: unpack() of a very long list would overflow Lua's C stack.
for i = 1, #tokens, 500 do
  local chunk = {}
  for j = i, math.min(i + 499, #tokens) do chunk[#chunk + 1] = tokens[j] end
  for _, raw in ipairs(redis.call('HMGET', KEYS[2], unpack(chunk))) do
    if raw then out[#out + 1] = raw end
  end
end
return out
