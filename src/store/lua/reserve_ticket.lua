-- reserveTicket: ARGV = prefix, ticket JSON (without status/delivered), capacity, untracked,
-- maxTicketsPerOrder. Returns { 'reserved', order JSON, { lapsed ticket JSON... } } or
-- { refusal }: the lapsed list is the order's earlier outstanding tickets this step ended. Check and insert in
-- one script, so receptions sharing this Redis never both take a server's last slot.
local t = cjson.decode(ARGV[2])
local capacity, untracked, max_tickets = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])

local o = load_order(t.orderId)
if not o then return { 'unknown_order' } end
if #o.tickets >= max_tickets then return { 'ticket_limit' } end
-- The order's own outstanding tickets on this server lapse below, so they do not count.
local own = 0
for _, x in ipairs(o.tickets) do
  if x.server == t.server and is_outstanding(x.status) then own = own + 1 end
end
if redis.call('SCARD', P .. 'out:' .. t.server) - own + untracked >= capacity then return { 'full' } end
if redis.call('EXISTS', P .. 'ticket:' .. t.id) == 1 then
  return redis.error_reply('ticket id ' .. t.id .. ' already exists')
end

local lapsed = {}
for i = 1, #o.tickets do
  local ended = end_ticket(o, i, 'lapsed', t.issuedAt)
  if ended then lapsed[#lapsed + 1] = encode_flat(ended) end
end
t.status = 'issued'
t.delivered = 0
o.tickets[#o.tickets + 1] = t
redis.call('SET', P .. 'ticket:' .. t.id, o.id)
hold(t)
save_order(o)
return { 'reserved', encode_order(o), lapsed }
