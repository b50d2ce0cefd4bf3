package redisstore

import "github.com/redis/go-redis/v9"

// The store's writes run as Lua scripts so that each one is atomic: Redis runs
// a script to completion before serving anyone else, and with an append-only
// file it persists the script's effects as one MULTI/EXEC block, which a
// crash cannot cut in half.
//
// Keys (KEYS[1..3] of every script), all sharing one hash tag so that they
// would live on the same shard of a Redis Cluster:
//
//	{prefix}:stream  the stream; entry IDs are "0-<seq>"
//	{prefix}:ids     the id index: a sorted set whose members (all with score
//	                 0, ordered by their bytes) are "<len(id)>:<id><seq as 16
//	                 hex digits>"; the length prefix makes the id part
//	                 unambiguous whatever bytes an id holds, and the fixed-width
//	                 hex suffix sorts the duplicates of one id in Seq order, so
//	                 "earliest retained entry with this id" is one
//	                 ZRANGEBYLEX ... LIMIT 0 1, O(log n)
//	{prefix}:seq     the last Seq assigned (an integer, INCR'ed by appends)
//
// Lua numbers are doubles: Seqs stay exact up to 2^53, which at a million
// updates per second lasts 285 years. Times are compared as the two halves of
// their fixed-width decimal form for the same reason.

// luaCommon is the prologue shared by the scripts.
const luaCommon = `
local function field(e, name)
  local f = e[2]
  for i = 1, #f, 2 do
    if f[i] == name then return f[i + 1] end
  end
  return nil
end

local function seqof(sid)
  local ms, n = string.match(sid, '^(%d+)%-(%d+)$')
  if ms ~= '0' then return nil end
  return tonumber(n)
end

local function member(id, seq)
  return string.format('%d:', #id) .. id .. string.format('%016x', seq)
end

-- older reports whether the time t (20 digits) is before cutoff (20 digits).
local function older(t, cutoff)
  local a, b = tonumber(string.sub(t, 1, 10)), tonumber(string.sub(cutoff, 1, 10))
  if a ~= b then return a < b end
  return tonumber(string.sub(t, 11)) < tonumber(string.sub(cutoff, 11))
end

-- lastseq returns the last Seq assigned: the counter, or when it is missing
-- (deleted by hand), the stream's last generated ID.
local function lastseq(stream, seqkey)
  local last = 0
  local typ = redis.call('TYPE', stream)['ok']
  if typ == 'stream' then
    local info = redis.call('XINFO', 'STREAM', stream)
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then
        local s = seqof(info[i + 1])
        if s == nil then
          return redis.error_reply('ERR mercurectl: stream ' .. stream .. ' holds entries not written by mercurectl')
        end
        last = s
      end
    end
  elseif typ ~= 'none' then
    return redis.error_reply('ERR mercurectl: key ' .. stream .. ' is a ' .. typ .. ', not a stream')
  end
  local c = redis.call('GET', seqkey)
  if c then
    c = tonumber(c)
    if c > last then last = c end
  end
  return last
end

-- trim removes entries from the front of the stream, at most budget of them,
-- while the stream holds more than maxlen entries (0: no bound) or the front
-- entry is older than cutoff ('': no bound), and removes each from the id
-- index in the same step, so that the index never outlives the stream. It
-- returns {removed, more}: more is 1 when the budget ran out.
local function trim(stream, ids, maxlen, cutoff, budget)
  local excess = 0
  if maxlen > 0 then excess = redis.call('XLEN', stream) - maxlen end
  if excess <= 0 and cutoff == '' then return {0, 0} end
  local removed, last, step = 0, nil, 1
  while removed < budget do
    local n
    if removed < excess then
      n = excess - removed
    elseif cutoff ~= '' then
      n = step
      step = step * 2
    else
      break
    end
    if n > budget - removed then n = budget - removed end
    local start = '-'
    if last then start = '(' .. last end
    local batch = redis.call('XRANGE', stream, start, '+', 'COUNT', n)
    local stop = #batch < n
    for _, e in ipairs(batch) do
      local old = removed < excess
      if not old and cutoff ~= '' then
        local t = field(e, 't')
        old = t ~= nil and older(t, cutoff)
      end
      if not old then
        stop = true
        break
      end
      local id, seq = field(e, 'i'), seqof(e[1])
      if id and seq then redis.call('ZREM', ids, member(id, seq)) end
      removed = removed + 1
      last = e[1]
    end
    if stop then break end
  end
  if last then
    local ms, n = string.match(last, '^(%d+)%-(%d+)$')
    redis.call('XTRIM', stream, 'MINID', string.format('%s-%d', ms, tonumber(n) + 1))
  end
  local more = 0
  if removed >= budget then more = 1 end
  return {removed, more}
end
`

// openScript returns the last Seq assigned, and fails if the keys hold
// something this store did not write.
var openScript = redis.NewScript(luaCommon + `
return lastseq(KEYS[1], KEYS[3])
`)

// appendScript assigns the next Seq, adds the entry and its index member, and
// trims. ARGV: id, time (20 digits), encoded update, floor (the caller's
// LastSeq: the new Seq is always above it, so that Seqs keep increasing on
// every node even if Redis lost its data), maxlen, cutoff, budget.
// It returns {seq, more}.
var appendScript = redis.NewScript(luaCommon + `
if redis.call('EXISTS', KEYS[3]) == 0 then
  local last = lastseq(KEYS[1], KEYS[3])
  if type(last) == 'table' then return last end
  redis.call('SET', KEYS[3], string.format('%d', last))
end
local seq = redis.call('INCR', KEYS[3])
local floor = tonumber(ARGV[4])
if seq <= floor then
  seq = floor + 1
  redis.call('SET', KEYS[3], string.format('%d', seq))
end
if seq >= 9007199254740992 then
  return redis.error_reply('ERR mercurectl: sequence number out of range')
end
redis.call('XADD', KEYS[1], string.format('0-%d', seq), 'i', ARGV[1], 't', ARGV[2], 'u', ARGV[3])
redis.call('ZADD', KEYS[2], 0, member(ARGV[1], seq))
local r = trim(KEYS[1], KEYS[2], tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7]))
return {seq, r[2]}
`)

// trimScript applies retention without appending. ARGV: maxlen, cutoff,
// budget. It returns {removed, more}.
var trimScript = redis.NewScript(luaCommon + `
return trim(KEYS[1], KEYS[2], tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]))
`)

// lookupScript returns the Seq of the earliest retained entry whose id is
// ARGV[1], or nil. Retained means: among the last ARGV[2] Seqs assigned (0: no
// bound), not older than ARGV[3] (empty: no bound), and still in the stream. An
// index member whose entry is gone (trimmed by hand, outside this store) is
// removed on the way, so the index heals itself.
var lookupScript = redis.NewScript(luaCommon + `
local floor = 0
local n = tonumber(ARGV[2])
if n > 0 then
  local last = tonumber(redis.call('GET', KEYS[3]) or '0')
  if last > n then floor = last - n end
end
local p = string.format('%d:', #ARGV[1]) .. ARGV[1]
local lo = '[' .. p .. string.format('%016x', floor + 1)
local hi = '(' .. p .. '\255'
while true do
  local m = redis.call('ZRANGEBYLEX', KEYS[2], lo, hi, 'LIMIT', 0, 1)
  if #m == 0 then return false end
  local seq = tonumber(string.sub(m[1], -16), 16)
  local sid = string.format('0-%d', seq)
  local e = redis.call('XRANGE', KEYS[1], sid, sid)
  if #e == 0 then
    redis.call('ZREM', KEYS[2], m[1])
  else
    local t = field(e[1], 't')
    if ARGV[3] == '' or (t ~= nil and not older(t, ARGV[3])) then return seq end
  end
  lo = '(' .. m[1]
end
`)
