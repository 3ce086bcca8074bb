-- lapseUnclaimed: ARGV = prefix, now, batch limit. Lapses up to `limit` issued tickets whose
-- claimBy <= now, and downloading tickets whose expiresAt <= now (both are the score in 'claim'),
-- and returns their JSON; the caller repeats while a full batch comes back, so
-- no single script blocks Redis for long.
local now, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', P .. 'claim', '-inf', ARGV[2], 'LIMIT', 0, limit)
local lapsed = {}
for _, ticket_id in ipairs(due) do
  redis.call('ZREM', P .. 'claim', ticket_id)
  local order_id = redis.call('GET', P .. 'ticket:' .. ticket_id)
  local o = order_id and load_order(order_id)
  local i = o and index_of(o, ticket_id)
  if i and is_outstanding(o.tickets[i].status) then
    local ended = end_ticket(o, i, 'lapsed', now)
    save_order(o)
    lapsed[#lapsed + 1] = encode_flat(ended)
  end
end
return lapsed
