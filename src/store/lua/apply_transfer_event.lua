-- applyTransferEvent: ARGV = prefix, event id, ticket id, type (started | fulfilled |
-- abandoned), delivered, at, event-id retention ms. Returns { 0 } when nothing was applied (a
-- repeated event id, or an unknown ticket), else { 1, freedSlot 0|1, order JSON, ticket index }.
-- The ticket's step mirrors applyEvent in src/store/rules.ts.
local event_key = P .. 'event:' .. ARGV[2]
local ticket_id, kind = ARGV[3], ARGV[4]
local delivered, at = tonumber(ARGV[5]), tonumber(ARGV[6])

if redis.call('EXISTS', event_key) == 1 then return { 0 } end
local order_id = redis.call('GET', P .. 'ticket:' .. ticket_id)
if not order_id then return { 0 } end
local o = load_order(order_id)
if not o then return { 0 } end
local i = index_of(o, ticket_id)
if not i then return { 0 } end
redis.call('SET', event_key, '1', 'PX', ARGV[7])

local t = o.tickets[i]
local freed = 0
if t.status ~= 'fulfilled' then
  if delivered > t.delivered then t.delivered = delivered end
  local was_outstanding = is_outstanding(t.status)
  if kind == 'started' then
    if t.startedAt == nil then t.startedAt = at end
    if t.status == 'issued' then
      t.status = 'downloading'
      hold(t)
    elseif t.status == 'lapsed' or t.status == 'failed' then
      -- The client came back with a still-valid ticket: the transfer is happening, it counts.
      t.status = 'downloading'
      t.finishedAt = nil
      hold(t)
    end
  elseif kind == 'fulfilled' then
    t.status = 'fulfilled'
    t.finishedAt = at
    if was_outstanding then
      release(t)
      freed = 1
    end
  elseif kind == 'abandoned' then
    if was_outstanding then
      t.status = 'lapsed'
      t.finishedAt = at
      release(t)
      freed = 1
    end
  end
end
save_order(o)
return { 1, freed, encode_order(o), i }
