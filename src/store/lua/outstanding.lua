-- outstanding: ARGV = prefix. Returns { server, { ticket ids }, server, { ... }, ... }: one
-- consistent snapshot of every server's outstanding tickets.
local out = {}
for _, server in ipairs(redis.call('SMEMBERS', P .. 'servers')) do
  local ids = redis.call('SMEMBERS', P .. 'out:' .. server)
  if #ids > 0 then
    out[#out + 1] = server
    out[#out + 1] = ids
  end
end
return out
