-- At open: KEYS = line, lineseen, linedata. A line written by an older rushgate lives in the
-- linedata hash alone; give its entries their places in the two sorted sets. Once per Redis
-- (nothing to do once the sets exist), O(N) that one time. Returns how many were indexed.
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
local n = 0
for _, raw in ipairs(redis.call('HVALS', KEYS[3])) do
  local e = cjson.decode(raw)
  redis.call('ZADD', KEYS[1], json_number(e.seq), e.token)
  redis.call('ZADD', KEYS[2], json_number(e.lastSeenAt), e.token)
  n = n + 1
end
return n
