-- leaveLine: ARGV = prefix, token. Removes the entry; returns its JSON, or false.
local token = ARGV[2]
local raw = redis.call('HGET', P .. 'linedata', token)
if not raw then return false end
redis.call('HDEL', P .. 'linedata', token)
return raw
