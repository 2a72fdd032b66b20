/*
 * The rules of `session:` (its secrets, its store and the store's timeout)
 * and of `tokens:` that the schema cannot say.
 */
import { parseDuration, parseSize } from './duration.js'
import type { Add } from './finding.js'
import type { RawConfig } from './schema.js'
import { parseStore } from './store-url.js'
import { checkTimed, orNaN } from './timer-bounds.js'

/** The longest `session.storeTimeout`. */
const MAX_STORE_TIMEOUT = 30_000

/**
 * `tokens.maxSize` at most: 1 MiB, the most of an IdP answer that is read
 * at all (oidc/idp-http.ts), so a larger bound would bound nothing.
 */
const MAX_TOKEN_SIZE = 1024 * 1024

/** `tokens.refreshWait` and `tokens.maxSize` within their bounds. */
export function checkTokenBounds(tokens: RawConfig['tokens'], add: Add): void {
  checkTimed(tokens.refreshWait, ['tokens', 'refreshWait'], add)
  // A malformed size the schema has reported already.
  const maxTokenSize = orNaN(() => parseSize(tokens.maxSize))
  if (maxTokenSize < 1024)
    add(['tokens', 'maxSize'], 'must be at least 1kb: a signed JWT alone takes most of it')
  else if (maxTokenSize > MAX_TOKEN_SIZE)
    add(['tokens', 'maxSize'], 'must be at most 1mb: no identity provider answer larger is read')
}

/** One session secret or a list of them, each long enough; the store, its keys and its timeouts. */
export function checkSession(session: RawConfig['session'], add: Add): void {
  const { secret, secrets } = session
  if (secret === undefined && secrets === undefined)
    add(['session', 'secret'], 'is required (or secrets: [new, old])')
  if (secret !== undefined && secrets !== undefined)
    add(['session', 'secrets'], 'set either secret or secrets, not both')
  if (secret !== undefined && secret.length < 32) {
    add(['session', 'secret'], `must be at least 32 characters (got ${secret.length})`)
  }
  secrets?.forEach((s, i) => {
    // An empty one after the first is a place held by `${VAR:-}` (load.ts).
    if (s.length < 32 && !(i > 0 && s === ''))
      add(['session', 'secrets', i], `must be at least 32 characters (got ${s.length})`)
  })

  const store = parseStore(session.store)
  if (typeof store === 'string') add(['session', 'store'], store)
  // A brace would start a hash tag of its own and split a session's keys
  // over Redis Cluster slots (Cluster spec, "Hash tags").
  if (/[{}]/.test(session.keyPrefix)) add(['session', 'keyPrefix'], 'must not contain { or }')
  if (parseDuration(session.absoluteTimeout) < parseDuration(session.idleTimeout)) {
    add(['session', 'absoluteTimeout'], 'must not be shorter than idleTimeout')
  }
  const storeTimeout = orNaN(() => parseDuration(session.storeTimeout))
  if (storeTimeout === 0)
    add(['session', 'storeTimeout'], 'must be more than 0: every command to Redis has a timeout')
  // Every request may wait this long on a Redis that does not answer,
  // holding its socket and its memory: a minute of that is an outage, not
  // a slow store.
  else if (storeTimeout > MAX_STORE_TIMEOUT)
    add(
      ['session', 'storeTimeout'],
      'must be at most 30s: every request may wait this long on a Redis that does not answer',
    )
}
