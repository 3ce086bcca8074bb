-- sweepLine: KEYS = line, lineseen, linedata; ARGV = prefix, seenBefore, limit. Removes up to
-- `limit` entries last seen before seenBefore, least recently seen first (lineseen is ordered by
-- lastSeenAt), and returns their JSON. O(k log N): the caller repeats, nothing scans the line.
local line, seen, data = KEYS[1], KEYS[2], KEYS[3]
local due = redis.call('ZRANGEBYSCORE', seen, '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local gone = {}
for _, token in ipairs(due) do
  local raw = redis.call('HGET', data, token)
  if raw then
    gone[#gone + 1] = raw
    redis.call('HDEL', data, token)
  end
  redis.call('ZREM', line, token)
  redis.call('ZREM', seen, token)
end
return gone
