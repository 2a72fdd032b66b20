/**
 * Lua scripts, each one atomic on the Redis server. Hash fields of a
 * session key `{prefix}s:{id}`:
 *   d    JSON of the fields fixed at login (claims, createdAt, logoutHandle)
 *   t    JSON of the TokenSet        v  version (compare-and-set guard)
 *   i    idle expiry, epoch ms       a  absolute expiry, epoch ms
 *   sub, sid                         for the indexes
 * Index keys `{prefix}sub:{sub}` and `{prefix}sid:{sid}` are sorted sets of
 * session ids scored by each session's current expiry, so members whose
 * session has expired are dropped with ZREMRANGEBYSCORE, never swept.
 *
 * Scripts derive index keys from the prefix, so Gatehouse needs a
 * standalone Redis (or a single-shard setup), not Redis Cluster.
 */

/** KEYS[1] session. ARGV: prefix, id, d, t, idle, abs, sub, sid ('' if none). */
export const CREATE = `
local key = KEYS[1]
redis.call('HSET', key, 'd', ARGV[3], 't', ARGV[4], 'v', 0, 'i', ARGV[5], 'a', ARGV[6], 'sub', ARGV[7], 'sid', ARGV[8])
local expires = math.min(tonumber(ARGV[5]), tonumber(ARGV[6]))
redis.call('PEXPIREAT', key, expires)
local function index(ikey)
  redis.call('ZADD', ikey, expires, ARGV[2])
  local last = redis.call('ZRANGE', ikey, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', ikey, tonumber(last[2]))
end
index(ARGV[1] .. 'sub:' .. ARGV[7])
if ARGV[8] ~= '' then index(ARGV[1] .. 'sid:' .. ARGV[8]) end
return 1
`

/**
 * The hot-path read, with the throttled touch folded in: one round trip.
 * Touching writes only the idle expiry, its TTL and the index scores,
 * never a token field, so it cannot undo a concurrent refresh.
 * KEYS[1] session. ARGV: prefix, id, now, idleMs, touchEveryMs.
 */
export const GET_AND_TOUCH = `
local key = KEYS[1]
local h = redis.call('HMGET', key, 'd', 't', 'v', 'i', 'a', 'sub', 'sid')
if not h[1] then return nil end
local now = tonumber(ARGV[3])
local idle = tonumber(h[4])
local abs = tonumber(h[5])
if now >= idle or now >= abs then return nil end
if now - (idle - tonumber(ARGV[4])) >= tonumber(ARGV[5]) then
  idle = math.min(now + tonumber(ARGV[4]), abs)
  redis.call('HSET', key, 'i', idle)
  redis.call('PEXPIREAT', key, idle)
  redis.call('ZADD', ARGV[1] .. 'sub:' .. h[6], 'XX', idle, ARGV[2])
  if h[7] ~= '' then redis.call('ZADD', ARGV[1] .. 'sid:' .. h[7], 'XX', idle, ARGV[2]) end
end
return {h[1], h[2], h[3], tostring(idle), h[5], h[6], h[7]}
`

/**
 * Versioned compare-and-set of the tokens: the write lands only if nobody
 * wrote since we read. A last-write-wins save would let a slow request put
 * back a refresh token the IdP has already rotated away
 * (express-openid-connect #408). HSET keeps the key's TTL.
 * KEYS[1] session. ARGV: expected version, tokens JSON.
 */
export const UPDATE_TOKENS = `
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return 'missing' end
if tonumber(v) ~= tonumber(ARGV[1]) then return 'stale' end
redis.call('HSET', KEYS[1], 't', ARGV[2], 'v', tonumber(v) + 1)
return 'updated'
`

/** KEYS[1] session. ARGV: prefix, id. */
export const DELETE = `
local h = redis.call('HMGET', KEYS[1], 'sub', 'sid')
redis.call('DEL', KEYS[1])
if h[1] then redis.call('ZREM', ARGV[1] .. 'sub:' .. h[1], ARGV[2]) end
if h[2] and h[2] ~= '' then redis.call('ZREM', ARGV[1] .. 'sid:' .. h[2], ARGV[2]) end
return 1
`

/** Live members of an index, pruning expired ones. KEYS[1] index. ARGV: prefix, now. */
export const LIVE_MEMBERS = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local live = {}
for _, id in ipairs(ids) do
  if redis.call('EXISTS', ARGV[1] .. 's:' .. id) == 1 then
    table.insert(live, id)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return live
`

/** Renews a lock iff still owned. KEYS[1] lock. ARGV: owner, ttlMs. */
export const RENEW_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`

/** Deletes a lock iff still owned. KEYS[1] lock. ARGV: owner. */
export const RELEASE_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`
