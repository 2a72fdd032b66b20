import { createHmac, randomBytes } from 'node:crypto'
import { SEALING_KEY_BYTES, SealingKey } from '../crypto/sealing-key.js'

/** The key id in every envelope a session key seals: version 1 of the cookie-carried key. */
const SESSION_KEY_ID = 's1'

/** A key in the cookie: 32 bytes as unpadded base64url. */
const COOKIE_FORM = /^[A-Za-z0-9_-]{43}$/

/**
 * The key a session's secret fields are sealed with in the store, made at
 * login and carried only by the sealed session cookie, as oauth2-proxy
 * carries its ticket secret. A copy of the store therefore opens nothing.
 *
 * The cookie carries this key alone: the record's id is derived from it,
 * which reveals nothing of the key, so the store knows the id and never
 * the key, and the cookie is no larger than when it held a random id.
 */
export class SessionKey extends SealingKey {
  /** The id of the store record this key opens. */
  readonly sessionId: string

  private constructor(bytes: Buffer) {
    super(SESSION_KEY_ID, bytes)
    // HMAC-SHA-256 as a PRF (RFC 2104) keyed with the session key: one-way,
    // and on every request, where HKDF's extract step (RFC 5869 §3.3: not
    // needed for a uniformly random key) would more than double the cost.
    this.sessionId = createHmac('sha256', bytes).update('gatehouse session id v1').digest('base64url')
  }

  /** A new random key, for a new session. */
  static generate(): SessionKey {
    return new SessionKey(randomBytes(SEALING_KEY_BYTES))
  }

  /** The key a cookie carries, or `undefined` when it carries none (a cookie of the previous version). */
  static fromCookie(value: unknown): SessionKey | undefined {
    if (typeof value !== 'string' || !COOKIE_FORM.test(value)) return undefined
    return new SessionKey(Buffer.from(value, 'base64url'))
  }

  /** The form the sealed cookie carries. */
  toCookie(): string {
    return this.exportBytes().toString('base64url')
  }
}
