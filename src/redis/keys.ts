/**
 * Every key and channel Gatehouse uses in Redis, in one place: the builders
 * every store names its keys with, and beside them the layout documented for
 * operators. The README's key table lists the same keys, and a test builds
 * each key here and compares it with the layout (test/redis/keys.test.ts).
 *
 * `{prefix}` is `session.keyPrefix`. Braces in a built key are literal: a
 * Redis Cluster hash tag, so each key is owned by one slot, whatever
 * prefix it has, and no script or command spans two.
 */

import { SHORTHAND_PROVIDER } from '../config/schema.js'

/** `session.keyPrefix` when none is configured. */
export const DEFAULT_KEY_PREFIX = 'gatehouse:'

/** The keys and channels under one prefix. */
export interface RedisKeys {
  /** A session record: a hash (`REDIS_KEY_LAYOUT.session`). */
  session(id: string): string
  /** What every session key starts with: the prefix the local session cache tracks. */
  readonly sessions: string
  /**
   * The sessions of a user (`sub`) or of an IdP session (`sid`) at provider
   * `idp`, named by the keyed hash of the claim. A `sub` or `sid` is unique
   * only within its issuer, so each provider has indexes of its own; those
   * of `default` (the provider `oidc:` makes) keep the names of a gateway
   * with one provider, so no session indexed before providers had names is lost.
   */
  index(claim: 'sub' | 'sid', name: string, idp?: string): string
  /** A refresh or client-token lock. */
  lock(key: string): string
  /** The channel lock releases are published on. */
  readonly lockReleased: string
  /** A shared client-credentials token, by its sorted scopes. */
  clientToken(scopes: string): string
  /** A one-time identifier already acted on (a logout token's `logout:<hash>`). */
  seen(key: string): string
  /** An IdP session a back-channel logout ended, by the keyed hash of its issuer, client id and `sid`. */
  loggedOutSid(name: string): string
  /** When a back-channel logout naming only a user came, by the keyed hash of its issuer, client id and `sub`. */
  loggedOutSub(name: string): string
  /** That a sign-in replaced session `id` (`SessionStore.noteReplaced`). */
  replaced(id: string): string
  /** Which refused token last forced a refresh, per session and route. */
  retryCooldown(key: string): string
  /** The namespace of @fastify/rate-limit's counters. */
  readonly rateLimit: string
  /** The key a check writes to learn whether Redis takes writes (refusals.ts); the tag picks a Cluster master. */
  writeProbe(tag: string): string
}

/**
 * What a named frontend's session ids start with: `<frontend>:`, so its
 * records, locks and per-session keys are `{prefix}s:{<frontend>:<id>}`
 * and the like, while the sub and sid indexes, which back-channel logout
 * reads, list the sessions of every frontend. `''` for the one frontend of
 * a config without `frontends:`, whose keys are as they always were.
 */
export function sessionNamespace(frontend: string): string {
  return frontend === '' ? '' : `${frontend}:`
}

/** The keys under `prefix` (`session.keyPrefix`). */
export function redisKeys(prefix: string = DEFAULT_KEY_PREFIX): RedisKeys {
  const sessions = `${prefix}s:`
  return {
    session: (id) => `${sessions}{${id}}`,
    sessions,
    index: (claim, name, idp) =>
      idp === undefined || idp === SHORTHAND_PROVIDER
        ? `${prefix}${claim}:{${name}}`
        : `${prefix}idp:${idp}:${claim}:{${name}}`,
    lock: (key) => `${prefix}lock:{${key}}`,
    lockReleased: `${prefix}lock-released`,
    clientToken: (scopes) => `${prefix}ct:${scopes}`,
    seen: (key) => `${prefix}seen:${key}`,
    loggedOutSid: (name) => `${prefix}logged-out:sid:${name}`,
    loggedOutSub: (name) => `${prefix}logged-out:sub:${name}`,
    // Outside `s:`, which the local cache tracks: a marker is no session.
    replaced: (id) => `${prefix}replaced:{${id}}`,
    retryCooldown: (key) => `${prefix}cooldown:${key}`,
    rateLimit: `${prefix}rl:`,
    writeProbe: (tag) => `${prefix}probe:{${tag}}`,
  }
}

/** The layout, for the docs and for operators: each key with its type, what it holds and when it expires. */
export const REDIS_KEY_LAYOUT = {
  session: {
    key: '{prefix}s:{<id>}',
    type: 'hash',
    fields: {
      login:
        'sealed with the session key: provider and the issuer and client id of its tokens, sub, sid, claims, createdAt, logout handle',
      tokens: "sealed with the session key: the login's TokenSet and each route audience's access token",
      v: 'version',
      idle: 'idle expiry',
      abs: 'absolute expiry',
      ix: "the keyed hashes of sub and sid, the provider's name, and the issuer and client id of its tokens, as JSON",
      c: "creation time: which of a user's sessions is oldest, for session.maxPerUser",
      rx: '`<v>:<epoch ms>`: when the refresh token of version <v> of the tokens expires (empty: the IdP did not say), so a logout can tell a session sharing its grant can no longer refresh',
    },
    expires: 'PEXPIREAT min(idle, abs)',
  },
  frontendSession: {
    key: '{prefix}s:{<frontend>:<id>}',
    type: 'hash',
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
  bySubOfProvider: {
    key: '{prefix}idp:<name>:sub:{<HMAC(sub)>}',
    type: 'zset',
    expires: 'as bySub; for each provider of identityProviders but one named default',
  },
  bySidOfProvider: {
    key: '{prefix}idp:<name>:sid:{<HMAC(sid)>}',
    type: 'zset',
    expires: 'as bySid; for each provider of identityProviders but one named default',
  },
  lock: { key: '{prefix}lock:{<key>}', type: 'string', expires: 'PX ttl, renewed while held' },
  clientToken: {
    key: '{prefix}ct:<scopes>',
    type: 'string',
    expires: 'PX, with the token; sealed with a key derived from session.secrets',
  },
  seenLogoutToken: {
    key: '{prefix}seen:logout:<hash>',
    type: 'string',
    expires:
      'PX 2 s while carried out (held), then 5 minutes once carried out (done, or owed when carried out after a store outage); named by a SHA-256 of the issuer, client id and jti',
  },
  loggedOutSid: {
    key: '{prefix}logged-out:sid:<hash>',
    type: 'string',
    expires:
      'PX 10 minutes from the back-channel logout that ended the IdP session; named by a keyed hash of the issuer, client id and sid',
  },
  loggedOutSub: {
    key: '{prefix}logged-out:sub:<hash>',
    type: 'string',
    expires:
      "PX 10 minutes from the back-channel logout naming only the user; holds when it came (epoch ms) and its token's iat (whole seconds) as `<at>.<iat>`, the latest of each; named by a keyed hash of the issuer, client id and sub",
  },
  replaced: {
    key: '{prefix}replaced:{<id>}',
    type: 'string',
    expires:
      "PX 5 minutes from the sign-in that replaced the session <id> (session fixation); `1`, so a request still carrying that session's cookie is refused without clearing the browser's new one",
  },
  retryCooldown: { key: '{prefix}cooldown:<hash>', type: 'string', expires: 'PX tokens.retryCooldown' },
  rateLimit: {
    key: '{prefix}rl:…',
    type: '@fastify/rate-limit, named by route and a keyed hash of the client address',
    expires: 'the rate-limit window',
  },
  writeProbe: {
    key: '{prefix}probe:{<n>}',
    type: 'string',
    expires:
      "PX 10 s; written at each connect, by /readyz and metrics scrapes at most once a second, and at most once a second when a request's write meets OOM or NOPERM, to learn whether Redis takes the gateway's writes (a full Redis under noeviction does not, nor an ACL whose key patterns leave out the prefix), one per Cluster master",
  },
  lockReleased: { key: '{prefix}lock-released', type: 'channel', expires: 'never (pub/sub)' },
  invalidations: {
    key: '__redis__:invalidate',
    type: 'channel',
    expires: 'CLIENT TRACKING BCAST PREFIX {prefix}s:, when the local cache is on',
  },
} as const
