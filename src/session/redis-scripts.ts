/**
 * The session store's Lua scripts, each atomic on the Redis server and one
 * round trip (the refresh lock's are in `tokens/redis-lock-scripts.ts`). The key
 * layout they maintain is `REDIS_KEY_LAYOUT` in `src/redis/keys.ts`.
 *
 * Each script touches exactly the keys it is given, and each is given one:
 * a Redis Cluster runs a script only on the node that owns all of its keys,
 * and a key a script derives itself (from a prefix) may live on another.
 * Work that spans a session and its indexes is a sequence of single-key
 * steps, ordered so that a crash between two leaves only index members that
 * readers prune.
 *
 * Numbers leave Lua through `%.0f`: Lua 5.1 would print large floats in
 * exponent form, which PEXPIREAT and ZADD reject.
 */

/**
 * Adds a session id to an index, pruning members past their absolute
 * expiry, and keeps the index alive as long as its longest-lived member.
 * Returns members that may belong to sessions gone before their absolute
 * expiry (idle timeout, a logout after it), for the caller to check on
 * their own keys: the oldest few and a few from a random rank, all scored
 * below `settled`, so a member whose record another sign-in is still
 * writing (indexes go first) is not offered while the instances agree on
 * the absolute timeout and the time; when they do not, that sign-in puts
 * its member back once its record exists. Offering 0 offers none.
 * KEYS: index. ARGV: id, absolute expiry, now, settled, a random number in
 * [0, 1), how many of each kind to offer.
 */
export const INDEX_ADD = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%.0f', tonumber(ARGV[3])))
redis.call('ZADD', KEYS[1], string.format('%.0f', tonumber(ARGV[2])), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
local k = tonumber(ARGV[6])
local settled = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. string.format('%.0f', tonumber(ARGV[4])))
if settled == 0 then return {} end
local offered = redis.call('ZRANGE', KEYS[1], 0, math.min(k, settled) - 1)
if settled > k then
  local from = k + math.floor(tonumber(ARGV[5]) * (settled - k))
  local more = redis.call('ZRANGE', KEYS[1], from, math.min(from + k, settled) - 1)
  for _, id in ipairs(more) do offered[#offered + 1] = id end
end
return offered
`

/**
 * Writes a new session and its TTL, with its refresh token's expiry as
 * \`rx\`: \`<version>:<epoch ms>\` (\`<version>:\` when the IdP did not
 * say), the version of the tokens it belongs to (see UPDATE_TOKENS).
 * KEYS: session. ARGV: sealed login fields, sealed tokens, version, idle
 * expiry, absolute expiry, index hashes JSON, creation time, the refresh
 * token's expiry or ''.
 */
export const CREATE = `
redis.call('HSET', KEYS[1], 'login', ARGV[1], 'tokens', ARGV[2], 'v', ARGV[3], 'idle', ARGV[4], 'abs', ARGV[5], 'ix', ARGV[6], 'c', ARGV[7], 'rx', ARGV[3] .. ':' .. ARGV[8])
redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', math.min(tonumber(ARGV[4]), tonumber(ARGV[5]))))
return 1
`

/**
 * The read that slides the idle expiry, run only when a plain \`HMGET\`
 * found it due (see \`RedisSessionStore.get\`): re-reading here keeps the
 * check and the slide atomic. The touch writes
 * only \`idle\` and the key's TTL, never \`tokens\` or \`v\`, so a request that
 * read the session before a refresh cannot undo that refresh by touching.
 * Indexes are scored by absolute expiry, so they need no touch either.
 * It needs no key: expiry is in the clear.
 * KEYS: session. ARGV: now, idleTimeoutMs, touchEveryMs.
 * Returns nil, or { login, tokens, v, idle, abs }.
 */
export const GET_AND_TOUCH = `
local h = redis.call('HMGET', KEYS[1], 'login', 'tokens', 'v', 'idle', 'abs')
if not h[1] then return nil end
local now = tonumber(ARGV[1])
local idleMs = tonumber(ARGV[2])
local idle = tonumber(h[4])
if now >= idle then return nil end
local abs = tonumber(h[5])
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
 * #408 lost refreshed tokens exactly so). HSET keeps the key's TTL. A
 * record of the previous version (no \`login\`) counts as missing: its
 * tokens are never mixed with sealed ones. The refresh token's expiry,
 * \`rx\`, is written with the version the new tokens get: an instance of a
 * release before \`rx\` existed bumps the version without it, and a reader
 * then takes the expiry as unknown rather than trust the old token's.
 * KEYS: session. ARGV: expected version, sealed tokens, the refresh
 * token's expiry or ''.
 */
export const UPDATE_TOKENS = `
local h = redis.call('HMGET', KEYS[1], 'v', 'login')
if not h[1] or not h[2] then return 'missing' end
if tonumber(h[1]) ~= tonumber(ARGV[1]) then return 'stale' end
redis.call('HSET', KEYS[1], 'tokens', ARGV[2])
local v = redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HSET', KEYS[1], 'rx', string.format('%.0f', v) .. ':' .. ARGV[3])
return 'updated'
`

/**
 * Removes a session and returns what names its index entries, so the
 * caller can then take it out of its indexes (each on its own key, see
 * above): the index hashes, or a previous-version record's \`data\` JSON;
 * and whether there was a record, so of two that end one session at once
 * one alone counts it ended.
 * KEYS: session. Returns { ix, data, removed }, ix and data possibly nil
 * (HMGET's false, which is not the end of a Lua array), removed 1 or 0.
 */
export const DELETE = `
local h = redis.call('HMGET', KEYS[1], 'ix', 'data')
h[3] = redis.call('DEL', KEYS[1])
return h
`

/**
 * Removes a session iff the previous version wrote it (a \`data\` field and
 * plaintext \`tokens\`), returning both so the caller can clean its
 * indexes and revoke its refresh token. A sealed record is left alone: a
 * cookie without a key is not its cookie.
 * KEYS: session. Returns { data, tokens }, or nil.
 */
export const END_PREVIOUS_FORMAT = `
local h = redis.call('HMGET', KEYS[1], 'data', 'tokens')
if not h[1] then return nil end
redis.call('DEL', KEYS[1])
return h
`

/**
 * The members of an index not yet past their absolute expiry; those past it
 * are pruned. Whether each member's session still exists is asked of the
 * session's own key afterwards. KEYS: index. ARGV: now.
 */
export const INDEX_MEMBERS = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%.0f', tonumber(ARGV[1])))
return redis.call('ZRANGE', KEYS[1], 0, -1)
`

/**
 * Notes a back-channel logout of a user (`sub` only) as `<at>.<iat>`: when
 * it came (epoch ms) and its token's `iat` (whole seconds) as the
 * fraction, so a release before this one, which reads the note as a
 * number (`at`), still compares its whole-ms sign-in start with it alike.
 * A note there already within its time is merged as `latestLogout` does:
 * the latest `at`, and the latest `iat` only if both have one. The merge
 * and the write are one step, so two logouts noted at once keep both's
 * latest, and a logout owed since a store outage, noted late, cannot
 * replace a later one's note with its earlier times.
 * KEYS: note. ARGV: at, iat, ttl (ms). Returns the note written.
 */
export const NOTE_SUB_LOGGED_OUT = `
local at = tonumber(ARGV[1])
local iat = tonumber(ARGV[2])
local noted = redis.call('GET', KEYS[1])
if noted then
  local a, i = string.match(noted, '^(%d+)%.?(%d*)$')
  if a then
    at = math.max(at, tonumber(a))
    if i == '' then iat = nil else iat = math.max(iat, tonumber(i)) end
  end
end
local note = string.format('%.0f', at)
if iat then note = note .. '.' .. string.format('%.0f', iat) end
redis.call('SET', KEYS[1], note, 'PX', ARGV[3])
return note
`
