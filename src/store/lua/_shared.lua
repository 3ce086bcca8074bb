-- Helpers shared by every store script: src/store/redis.ts prepends this file to each one when
-- it loads them. They mirror src/store/rules.ts line for line (order status, ending a ticket),
-- so the Redis store behaves exactly like memory: and sqlite:. Every script takes the key prefix
-- as ARGV[1]. The order and ticket scripts build their keys from it (the keys depend on data read
-- inside the script, so they cannot be declared up front: a single Redis or a Sentinel pair, not
-- a Redis Cluster); the line's scripts and purge_orders take every key they touch in KEYS, so the
-- line's keys could live on one cluster slot under a hash-tagged prefix.
--
-- Keys: order:<id> (JSON, tickets inside, oldest first), ticket:<id> (its order id),
-- out:<server> (set of outstanding ticket ids), servers (set of server ids), claim (sorted set of
-- `issued` ticket ids by claimBy), idem:<key>, event:<id>, activity (sorted set of order ids by a
-- lower bound of their last activity, for retention: purge_orders.lua). The waiting line: line
-- (sorted set token by seq: a position is ZRANK + 1), lineseen (sorted set token by lastSeenAt,
-- the abandonment sweep's order), linedata (hash token -> JSON entry), lineseq (counter).

local P = ARGV[1]

local function is_outstanding(status)
  return status == 'issued' or status == 'downloading'
end

local function order_status(tickets)
  if #tickets == 0 then return 'waiting' end
  local downloading, issued = false, false
  for _, t in ipairs(tickets) do
    if t.status == 'fulfilled' then return 'fulfilled' end
    if t.status == 'downloading' then downloading = true
    elseif t.status == 'issued' then issued = true end
  end
  if downloading then return 'downloading' end
  if issued then return 'ticketed' end
  return 'lapsed'
end

-- cjson prints numbers with 14 significant digits; byte counts need more, so integers are
-- printed whole here and only strings go through cjson.
local function json_number(n)
  if n == math.floor(n) and n > -9007199254740992 and n < 9007199254740992 then
    return string.format('%d', n)
  end
  return string.format('%.17g', n)
end

local function json_scalar(v)
  local kind = type(v)
  if kind == 'string' then return cjson.encode(v) end
  if kind == 'number' then return json_number(v) end
  if kind == 'boolean' then return v and 'true' or 'false' end
  error('store: cannot encode a ' .. kind)
end

-- An object whose values are all scalars (a ticket, a line entry).
local function encode_flat(obj)
  local parts = {}
  for k, v in pairs(obj) do parts[#parts + 1] = cjson.encode(k) .. ':' .. json_scalar(v) end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- An order: scalars plus `tickets`, always an array (cjson would turn an empty one into {}),
-- and `purchase` (CONTRACT §7), a flat object.
local function encode_order(o)
  local parts = {}
  for k, v in pairs(o) do
    if k == 'purchase' then parts[#parts + 1] = '"purchase":' .. encode_flat(v)
    elseif k ~= 'tickets' then parts[#parts + 1] = cjson.encode(k) .. ':' .. json_scalar(v) end
  end
  local tickets = {}
  for i, t in ipairs(o.tickets) do tickets[i] = encode_flat(t) end
  parts[#parts + 1] = '"tickets":[' .. table.concat(tickets, ',') .. ']'
  return '{' .. table.concat(parts, ',') .. '}'
end

local function load_order(id)
  local raw = redis.call('GET', P .. 'order:' .. id)
  if not raw then return nil end
  local o = cjson.decode(raw)
  if type(o.tickets) ~= 'table' then o.tickets = {} end
  return o
end

local function save_order(o)
  o.status = order_status(o.tickets)
  redis.call('SET', P .. 'order:' .. o.id, encode_order(o))
end

local function index_of(o, ticket_id)
  for i, t in ipairs(o.tickets) do
    if t.id == ticket_id then return i end
  end
  return nil
end

-- The ticket holds a slot on its server; only an `issued` one can lapse on claimBy.
local function hold(t)
  redis.call('SADD', P .. 'out:' .. t.server, t.id)
  redis.call('SADD', P .. 'servers', t.server)
  -- 'claim' holds each outstanding ticket's deadline: claimBy while issued, expiresAt once
  -- downloading (a transfer whose server died never reports its end; issue 8).
  if t.status == 'issued' then
    redis.call('ZADD', P .. 'claim', json_number(t.claimBy), t.id)
  else
    redis.call('ZADD', P .. 'claim', json_number(t.expiresAt), t.id)
  end
end

local function release(t)
  redis.call('SREM', P .. 'out:' .. t.server, t.id)
  redis.call('ZREM', P .. 'claim', t.id)
end

-- Ends the order's i-th ticket when it is outstanding; returns it, or nil.
local function end_ticket(o, i, status, at)
  local t = o.tickets[i]
  if not t or not is_outstanding(t.status) then return nil end
  t.status = status
  t.finishedAt = at
  release(t)
  return t
end
