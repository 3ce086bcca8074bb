-- createOrder: ARGV = prefix, order JSON (status waiting, no tickets), idempotency key or '',
-- createdAt, idempotency TTL ms, purchase hash or '' (CONTRACT §7: the order joins that purchase's set). Returns { kind, order JSON }. The key's expiry is checked
-- against createdAt (the store never reads a clock); its Redis TTL only collects garbage.
local order_json, key = ARGV[2], ARGV[3]
local order = cjson.decode(order_json)
local created_at, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])

if key ~= '' then
  local known = redis.call('GET', P .. 'idem:' .. key)
  if known then
    known = cjson.decode(known)
    if known.expiresAt > created_at then
      local earlier = load_order(known.orderId)
      if earlier then
        local kind = 'conflict'
        if earlier.item == order.item then kind = 'existing' end
        return { kind, encode_order(earlier) }
      end
    end
  end
end

if redis.call('EXISTS', P .. 'order:' .. order.id) == 1 then
  return redis.error_reply('order id ' .. order.id .. ' already exists')
end
redis.call('SET', P .. 'order:' .. order.id, order_json)
-- Retention's index (purge_orders.lua): a lower bound of the order's last activity.
redis.call('ZADD', P .. 'activity', json_number(created_at), order.id)
if key ~= '' then
  redis.call('SET', P .. 'idem:' .. key, encode_flat({ orderId = order.id, expiresAt = created_at + ttl }),
    'PX', json_number(math.max(ttl, 1)))
end
if ARGV[6] and ARGV[6] ~= '' then
  redis.call('SADD', P .. 'purchase:' .. ARGV[6], order.id)
end
return { 'created', order_json }
