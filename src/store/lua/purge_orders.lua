-- purgeInactive, second half: KEYS = activity, then for each candidate order its order key, its
-- tickets' ticket:<id> keys and its idem:<key> key (if any), as the client read them; ARGV =
-- prefix, now, retention ms, then per order: its id and how many of the KEYS are its own. Every
-- key this script touches is in KEYS. An order that changed since the client read it (another
-- ticket, so other keys) is left for the next sweep. Returns how many orders were purged.
-- The verdict mirrors purgeVerdict / lastActivityOf in src/store/rules.ts.
local now, retention = tonumber(ARGV[2]), tonumber(ARGV[3])
local activity = KEYS[1]
local k, purged = 2, 0

local function last_activity(o)
  local at = o.createdAt
  for _, t in ipairs(o.tickets) do
    at = math.max(at, t.issuedAt, t.expiresAt, t.startedAt or at, t.finishedAt or at)
  end
  return at
end

for a = 4, #ARGV, 2 do
  local id, count = ARGV[a], tonumber(ARGV[a + 1])
  local order_key = KEYS[k]
  local o = nil
  local raw = redis.call('GET', order_key)
  if raw then
    o = cjson.decode(raw)
    if type(o.tickets) ~= 'table' then o.tickets = {} end
  end
  if not o then
    redis.call('ZREM', activity, id)
  else
    -- The keys the client passed must be exactly this order's keys now.
    local expected = 1 + #o.tickets
    if o.idempotencyKey then expected = expected + 1 end
    local same = expected == count and order_key == P .. 'order:' .. id
    for i, t in ipairs(o.tickets) do
      if KEYS[k + i] ~= P .. 'ticket:' .. t.id then same = false end
    end
    local idem_key = nil
    if o.idempotencyKey then
      idem_key = KEYS[k + 1 + #o.tickets]
      if idem_key ~= P .. 'idem:' .. o.idempotencyKey then same = false end
    end
    if same then
      local live = false
      for _, t in ipairs(o.tickets) do
        if is_outstanding(t.status) then live = true end
      end
      local active_at = now
      if not live then active_at = last_activity(o) end
      if live or active_at + retention > now then
        redis.call('ZADD', activity, json_number(active_at), id)
      else
        for i = 1, #o.tickets do redis.call('DEL', KEYS[k + i]) end
        if idem_key then
          local known = redis.call('GET', idem_key)
          if known and cjson.decode(known).orderId == id then redis.call('DEL', idem_key) end
        end
        redis.call('DEL', order_key)
        redis.call('ZREM', activity, id)
        purged = purged + 1
      end
    end
  end
  k = k + count
end
return purged
