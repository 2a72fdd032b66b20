/**
 * The refresh lock's Lua scripts, each atomic on the Redis server and one
 * round trip. Each touches only the lock key it is given, so a Redis
 * Cluster runs it on the node that owns that key.
 */

/**
 * Takes a lock iff free: the `SET NX PX` it always was, run as a script so
 * that a Redis whose ACL refuses scripts (`-@scripting`) refuses the lock
 * too. Taken with a plain `SET`, such a lock could be neither renewed nor
 * given back, nor the rotated token stored, all of which are scripts: it
 * lapsed, and the next instance redeemed the refresh token its holder had
 * spent (RFC 9700 §4.14.2). KEYS: lock. ARGV: owner, ttlMs.
 */
export const ACQUIRE_LOCK = `
return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX')
`

/** Renews a lock iff still owned. KEYS: lock. ARGV: owner, ttlMs. */
export const RENEW_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`

/**
 * Deletes a lock iff still owned, and only then wakes waiters: a holder
 * whose lock lapsed must neither delete the next owner's lock nor tell
 * waiters it is free. KEYS: lock. ARGV: owner, channel, message, and
 * optionally a message published first: an idle or answered release's
 * (`IDLE_RELEASE`, `ANSWERED_RELEASE`), which a waiter of an instance that predates it does
 * not know, and which the plain message after it then wakes as before.
 */
export const RELEASE_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if ARGV[4] then redis.call('PUBLISH', ARGV[2], ARGV[4]) end
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
`

/**
 * Prefix of the message an idle release publishes before the lock's key.
 * Lock keys start `refresh:` or `client:`, so none is mistaken for it.
 */
export const IDLE_RELEASE = 'idle:'

/** Prefix of the message an answered release publishes before the lock's key, as `IDLE_RELEASE`. */
export const ANSWERED_RELEASE = 'answered:'
