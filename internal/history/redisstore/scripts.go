package redisstore

import "github.com/redis/go-redis/v9"

// The store's writes run as Lua scripts so that each one is atomic: Redis runs
// a script to completion before serving anyone else, and with an append-only
// file it persists the script's effects as one MULTI/EXEC block, which a
// crash cannot cut in half.
//
// Keys (KEYS[1..5] of every script), all sharing one hash tag so that they
// would live on the same shard of a Redis Cluster:
//
//	{prefix}:stream  the stream of published updates; entry IDs are "0-<seq>"
//	{prefix}:ids     the id index: a sorted set whose members (all with score
//	                 0, ordered by their bytes) are "<len(id)>:<id><seq as 16
//	                 hex digits>"; the length prefix makes the id part
//	                 unambiguous whatever bytes an id holds, and the fixed-width
//	                 hex suffix sorts the duplicates of one id in Seq order, so
//	                 "earliest retained entry with this id" is one
//	                 ZRANGEBYLEX ... LIMIT 0 1, O(log n); it indexes both
//	                 streams
//	{prefix}:seq     the last Seq assigned (an integer, INCR'ed by appends)
//	{prefix}:events  the stream of subscription events, like the first
//	{prefix}:kinds   a hash of two counters for each kind (u: published
//	                 updates, e: subscription events): un and en count the
//	                 entries appended, ub and eb add up their sizes
//	                 (history.Size)
//
// Retention by count and by bytes. Each kind is bounded on its own, so that
// subscription events never evict published updates (history.Retention).
// Every entry records, in fields n and b, its kind's two counters just after
// it was appended. With N and C the counters now, N - n entries and C - b
// bytes of its kind came after it, so whether retention still allows an
// entry is exact and O(1) however many entries were trimmed, and nothing has
// to be counted again. An entry larger than the byte bound adds nothing to
// the counters: it is delivered but never retained, and evicts nothing.
//
// Entries written before the counters existed (in {prefix}:stream, which
// then held both kinds) have neither field. They count as published updates
// with n = their Seq, which is exact because those Seqs were contiguous and
// un starts at the last Seq assigned (the open script sets it), and with
// b = 0: the byte bound counts each of them alone, on top of the bytes
// appended since, so they go all at once when those reach it.
//
// Lua numbers are doubles: Seqs stay exact up to 2^53, which at a million
// updates per second lasts 285 years, and byte counters up to 8 PiB. Times
// are compared as the two halves of their fixed-width decimal form for the
// same reason.

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
-- (deleted by hand), the last generated ID of either stream.
local function lastseq(streams, seqkey)
  local last = 0
  for _, stream in ipairs(streams) do
    local typ = redis.call('TYPE', stream)['ok']
    if typ == 'stream' then
      local info = redis.call('XINFO', 'STREAM', stream)
      for i = 1, #info, 2 do
        if info[i] == 'last-generated-id' then
          local s = seqof(info[i + 1])
          if s == nil then
            return redis.error_reply('ERR mercurectl: stream ' .. stream .. ' holds entries not written by mercurectl')
          end
          if s > last then last = s end
        end
      end
    elseif typ ~= 'none' then
      return redis.error_reply('ERR mercurectl: key ' .. stream .. ' is a ' .. typ .. ', not a stream')
    end
  end
  local c = redis.call('GET', seqkey)
  if c then
    c = tonumber(c)
    if c > last then last = c end
  end
  return last
end

-- counters returns the counters N and C of kind ('u' or 'e'). A missing un
-- (a store from before the counters, or keys deleted by hand) is the last
-- Seq assigned, for the reason given above.
local function counters(kinds, kind, seqkey)
  local v = redis.call('HMGET', kinds, kind .. 'n', kind .. 'b')
  local n, c = tonumber(v[1] or ''), tonumber(v[2] or '') or 0
  if n == nil then
    n = 0
    if kind == 'u' then n = tonumber(redis.call('GET', seqkey) or '0') end
  end
  return n, c
end

-- entry returns the n, b and size of entry e (see above).
local function entry(e)
  local n, b = tonumber(field(e, 'n') or ''), tonumber(field(e, 'b') or '')
  if n == nil then n = seqof(e[1]) or 0 end
  local i, u = field(e, 'i') or '', field(e, 'u') or ''
  return n, b or 0, #i + #u - 1
end

-- visible reports whether retention (maxn entries, maxb bytes, cutoff time;
-- 0 or '' for none) allows entry e of a kind whose counters are N and C.
local function visible(e, N, C, maxn, maxb, cutoff)
  local n, b, size = entry(e)
  if maxb > 0 and (size > maxb or C - b + size > maxb) then return false end
  if maxn > 0 and N - n >= maxn then return false end
  if cutoff ~= '' then
    local t = field(e, 't')
    if t == nil or older(t, cutoff) then return false end
  end
  return true
end

-- trim removes entries from the front of the stream of kind, at most budget
-- of them, while at least maxn entries (0: no bound) or more than maxb bytes
-- (0: no bound) of that kind came after the front entry, or it is older than
-- cutoff ('': no bound), and removes each from the id index in the same
-- step, so that the index never outlives the stream. It returns {removed,
-- more}: more is 1 when the budget ran out.
local function trim(stream, ids, kinds, kind, seqkey, maxn, maxb, cutoff, budget)
  if maxn == 0 and maxb == 0 and cutoff == '' then return {0, 0} end
  local N, C = counters(kinds, kind, seqkey)
  -- With a count bound alone, the stream's length says how many go.
  local excess = 0
  if maxn > 0 then excess = redis.call('XLEN', stream) - maxn end
  local countOnly = maxb == 0 and cutoff == ''
  if countOnly and excess <= 0 then return {0, 0} end
  local removed, last, step = 0, nil, 1
  if excess > 1 then step = excess end
  while removed < budget do
    local n = step
    step = step * 2
    if n > budget - removed then n = budget - removed end
    local start = '-'
    if last then start = '(' .. last end
    local batch = redis.call('XRANGE', stream, start, '+', 'COUNT', n)
    local stop = #batch < n
    for _, e in ipairs(batch) do
      local en, eb = entry(e)
      local old = (maxn > 0 and N - en >= maxn) or (maxb > 0 and C - eb > maxb)
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
    if stop or (countOnly and removed >= excess) then break end
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
// something this store did not write. It starts the counters of a store from
// before them (see above).
var openScript = redis.NewScript(luaCommon + `
local last = lastseq({KEYS[1], KEYS[4]}, KEYS[3])
if type(last) == 'table' then return last end
redis.call('HSETNX', KEYS[5], 'un', string.format('%d', last))
return last
`)

// appendScript assigns the next Seq, adds the entry to the stream of its kind
// with its index member, and trims that stream. ARGV: id, time (20 digits),
// encoded update, floor (the caller's LastSeq: the new Seq is always above
// it, so that Seqs keep increasing on every node even if Redis lost its
// data), kind ('u' or 'e'), the byte bound (0: none), then the trim's maxn,
// maxb, cutoff and budget. It returns {seq, more}.
var appendScript = redis.NewScript(luaCommon + `
if redis.call('EXISTS', KEYS[3]) == 0 then
  local last = lastseq({KEYS[1], KEYS[4]}, KEYS[3])
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
local kind, stream = ARGV[5], KEYS[1]
if kind == 'e' then stream = KEYS[4] end
local N, C = counters(KEYS[5], kind, KEYS[3])
local size = #ARGV[1] + #ARGV[3] - 1
local bound = tonumber(ARGV[6])
if bound == 0 or size <= bound then
  N, C = N + 1, C + size
  redis.call('HSET', KEYS[5], kind .. 'n', string.format('%d', N), kind .. 'b', string.format('%d', C))
end
redis.call('XADD', stream, string.format('0-%d', seq), 'i', ARGV[1], 't', ARGV[2], 'u', ARGV[3],
  'n', string.format('%d', N), 'b', string.format('%d', C))
redis.call('ZADD', KEYS[2], 0, member(ARGV[1], seq))
local r = trim(stream, KEYS[2], KEYS[5], kind, KEYS[3], tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9], tonumber(ARGV[10]))
return {seq, r[2]}
`)

// trimScript applies retention to both streams without appending. ARGV:
// maxn, maxb, cutoff, budget (for each stream). It returns {removed, more}.
var trimScript = redis.NewScript(luaCommon + `
local removed, more = 0, 0
for _, k in ipairs({{KEYS[1], 'u'}, {KEYS[4], 'e'}}) do
  local r = trim(k[1], KEYS[2], KEYS[5], k[2], KEYS[3], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]))
  removed = removed + r[1]
  if r[2] == 1 then more = 1 end
end
return {removed, more}
`)

// lookupScript returns the Seq of the earliest retained entry whose id is
// ARGV[1], or nil. Retained means: still in its stream, and allowed by the
// retention of its kind: ARGV[2] entries (0: no bound), ARGV[3] bytes (0: no
// bound), not older than ARGV[4] (empty: no bound). An index member whose
// entry is gone (trimmed by hand, outside this store) is removed on the way,
// so the index heals itself.
var lookupScript = redis.NewScript(luaCommon + `
local maxn, maxb = tonumber(ARGV[2]), tonumber(ARGV[3])
local p = string.format('%d:', #ARGV[1]) .. ARGV[1]
local lo = '[' .. p
local hi = '(' .. p .. '\255'
local cnt = {}
while true do
  local m = redis.call('ZRANGEBYLEX', KEYS[2], lo, hi, 'LIMIT', 0, 1)
  if #m == 0 then return false end
  local seq = tonumber(string.sub(m[1], -16), 16)
  local sid = string.format('0-%d', seq)
  local kind, e = 'u', redis.call('XRANGE', KEYS[1], sid, sid)
  if #e == 0 then kind, e = 'e', redis.call('XRANGE', KEYS[4], sid, sid) end
  if #e == 0 then
    redis.call('ZREM', KEYS[2], m[1])
  else
    if cnt[kind] == nil then cnt[kind] = {counters(KEYS[5], kind, KEYS[3])} end
    if visible(e[1], cnt[kind][1], cnt[kind][2], maxn, maxb, ARGV[4]) then return seq end
  end
  lo = '(' .. m[1]
end
`)
