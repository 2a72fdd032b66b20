/**
 * Lua scripts, each atomic on the Redis server and one round trip. The key
 * layout they maintain is `REDIS_KEY_LAYOUT` in `redis-store.ts`.
 *
 * Scripts derive index and session keys from the prefix, so Gatehouse needs
 * a standalone Redis (or a primary with replicas), not Redis Cluster.
 *
 * Numbers leave Lua through `%.0f`: Lua 5.1 would print large floats in
 * exponent form, which PEXPIREAT and ZADD reject.
 */

/**
 * Writes a new session, its TTL and its index entries.
 * KEYS: session, sub index, sid index (or the sub index again when no sid).
 * ARGV: id, data JSON, tokens JSON, version, idle expiry, absolute expiry,
 * now, has-sid ('1' or '0').
 */
export const CREATE = `
local idle = tonumber(ARGV[5])
local abs = tonumber(ARGV[6])
local now = tonumber(ARGV[7])
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'tokens', ARGV[3], 'v', ARGV[4], 'idle', ARGV[5])
redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', math.min(idle, abs)))
local function index(ikey)
  redis.call('ZREMRANGEBYSCORE', ikey, '-inf', '(' .. string.format('%.0f', now))
  redis.call('ZADD', ikey, string.format('%.0f', abs), ARGV[1])
  local last = redis.call('ZRANGE', ikey, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', ikey, last[2])
end
index(KEYS[2])
if ARGV[8] == '1' then index(KEYS[3]) end
return 1
`

/**
 * The read that slides the idle expiry, run only when a plain \`HMGET\`
 * found it due (see \`RedisSessionStore.get\`): re-reading here keeps the
 * check and the slide atomic. The touch writes
 * only \`idle\` and the key's TTL, never \`tokens\` or \`v\`, so a request that
 * read the session before a refresh cannot undo that refresh by touching.
 * Indexes are scored by absolute expiry, so they need no touch either.
 * KEYS: session. ARGV: now, idleTimeoutMs, touchEveryMs.
 * Returns nil, or { data, tokens, v, idle }.
 */
export const GET_AND_TOUCH = `
local h = redis.call('HMGET', KEYS[1], 'data', 'tokens', 'v', 'idle')
if not h[1] then return nil end
local now = tonumber(ARGV[1])
local idleMs = tonumber(ARGV[2])
local idle = tonumber(h[4])
if now >= idle then return nil end
local abs = tonumber(cjson.decode(h[1]).absoluteExpiresAt)
if now >= abs then return nil end
if now - (idle - idleMs) >= tonumber(ARGV[3]) then
  local slid = math.min(now + idleMs, abs)
  if slid > idle then
    idle = slid
    h[4] = string.format('%.0f', idle)
    redis.call('HSET', KEYS[1], 'idle', h[4])
    redis.call('PEXPIREAT', KEYS[1], h[4])
  end
end
return h
`

/**
 * Versioned compare-and-set of the tokens, in Lua so the check and the
 * write are one atomic step: the write lands only if nobody wrote since the
 * caller read. A last-write-wins save lets a slow request put back a
 * refresh token the IdP has already rotated away (express-openid-connect
 * #408 lost refreshed tokens exactly so). HSET keeps the key's TTL.
 * KEYS: session. ARGV: expected version, tokens JSON.
 */
export const UPDATE_TOKENS = `
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return 'missing' end
if tonumber(v) ~= tonumber(ARGV[1]) then return 'stale' end
redis.call('HSET', KEYS[1], 'tokens', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'v', 1)
return 'updated'
`

/** KEYS: session. ARGV: prefix, id. Removes the session and its index entries. */
export const DELETE = `
local data = redis.call('HGET', KEYS[1], 'data')
redis.call('DEL', KEYS[1])
if not data then return 0 end
local fixed = cjson.decode(data)
if type(fixed.sub) == 'string' then redis.call('ZREM', ARGV[1] .. 'sub:' .. fixed.sub, ARGV[2]) end
if type(fixed.sid) == 'string' then redis.call('ZREM', ARGV[1] .. 'sid:' .. fixed.sid, ARGV[2]) end
return 1
`

/**
 * Live members of an index. Drops members past their absolute expiry, and
 * members whose session key is gone (expired idle, or deleted); skips those
 * idle-expired by the caller's clock that Redis has not yet dropped.
 * KEYS: index. ARGV: prefix, now.
 */
export const LIVE_MEMBERS = `
local now = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%.0f', now))
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local live = {}
for _, id in ipairs(ids) do
  local idle = redis.call('HGET', ARGV[1] .. 's:' .. id, 'idle')
  if not idle then
    redis.call('ZREM', KEYS[1], id)
  elseif tonumber(idle) > now then
    table.insert(live, id)
  end
end
return live
`

/** Renews a lock iff still owned. KEYS: lock. ARGV: owner, ttlMs. */
export const RENEW_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`

/**
 * Deletes a lock iff still owned, and only then wakes waiters: a holder
 * whose lock lapsed must neither delete the next owner's lock nor tell
 * waiters it is free. KEYS: lock. ARGV: owner, channel, message.
 */
export const RELEASE_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
`
