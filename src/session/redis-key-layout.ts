/**
 * Every key and channel Gatehouse uses in Redis, for the docs and for
 * operators; the README's key table lists the same keys (a test checks).
 */
export const REDIS_KEY_LAYOUT = {
  session: {
    key: '{prefix}s:{<id>}',
    type: 'hash',
    fields: {
      login: 'sealed with the session key: sub, sid, claims, createdAt, logout handle',
      tokens: "sealed with the session key: the login's TokenSet and each route audience's access token",
      v: 'version',
      idle: 'idle expiry',
      abs: 'absolute expiry',
      ix: 'the keyed hashes of sub and sid, as JSON',
    },
    expires: 'PEXPIREAT min(idle, abs)',
  },
  bySub: {
    key: '{prefix}sub:{<HMAC(sub)>}',
    type: 'zset',
    expires: 'PEXPIREAT of its highest absolute expiry',
  },
  bySid: {
    key: '{prefix}sid:{<HMAC(sid)>}',
    type: 'zset',
    expires: 'PEXPIREAT of its highest absolute expiry',
  },
  lock: { key: '{prefix}lock:{<key>}', type: 'string', expires: 'PX ttl, renewed while held' },
  clientToken: {
    key: '{prefix}ct:{scopes}',
    type: 'string',
    expires: 'PX, with the token; sealed with a key derived from session.secrets',
  },
  seenLogoutToken: { key: '{prefix}seen:jti:{jti}', type: 'string', expires: 'PX 5 minutes' },
  retryCooldown: { key: '{prefix}cooldown:<hash>', type: 'string', expires: 'PX tokens.retryCooldown' },
  rateLimit: { key: '{prefix}rl:…', type: '@fastify/rate-limit', expires: 'the rate-limit window' },
  lockReleased: { key: '{prefix}lock-released', type: 'channel', expires: 'never (pub/sub)' },
  invalidations: {
    key: '__redis__:invalidate',
    type: 'channel',
    expires: 'CLIENT TRACKING BCAST PREFIX {prefix}s:, when the local cache is on',
  },
} as const
