-- endTicket: ARGV = prefix, ticket id, final status (failed | lapsed | revoked), at.
-- Returns the ended ticket's JSON, or false when it was not outstanding.
local ticket_id = ARGV[2]
local order_id = redis.call('GET', P .. 'ticket:' .. ticket_id)
if not order_id then return false end
local o = load_order(order_id)
if not o then return false end
local i = index_of(o, ticket_id)
if not i then return false end
local ended = end_ticket(o, i, ARGV[3], tonumber(ARGV[4]))
if not ended then return false end
save_order(o)
return encode_flat(ended)
