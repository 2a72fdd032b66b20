import { randomBytes } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { isGatehouseError, type LogCode } from '../errors.js'
import { ATTR, inSpan } from '../tracing/spans.js'
import type { LoginResult } from '../types.js'
import { SessionKey } from './session-key.js'
import type { SessionData, SessionRef, SessionStore } from './types.js'

/** What `Sessions` needs beyond the store. */
export interface SessionsOptions {
  /**
   * Revokes a refresh token at the IdP (RFC 7009), for sessions the
   * previous version wrote, which are ended rather than used. Must not
   * reject; absent, such tokens are left to expire.
   */
  readonly revoke?: (refreshToken: string) => Promise<void>
}

/**
 * When a session ends: at its idle or absolute expiry, or when its refresh
 * token does, if the IdP said when. RFC 10017 §6.1.2.2: once the refresh
 * token has expired no access token can be had without a new login, so the
 * session lives no longer than it.
 */
export function sessionEndsAt(session: SessionData): number {
  return Math.min(
    session.idleExpiresAt,
    session.absoluteExpiresAt,
    session.tokens.refreshTokenExpiresAt ?? Number.POSITIVE_INFINITY,
  )
}

function refreshTokenExpired(session: SessionData, now: number): boolean {
  const at = session.tokens.refreshTokenExpiresAt
  return at !== undefined && at <= now
}

/**
 * Ties the sealed session cookie to the server-side record. The cookie
 * holds only the session's key; the record's id is derived from it, and a
 * shared store keeps the record's secrets sealed with it. A cookie whose
 * record is gone, or does not open, is cleared on the way out.
 */
export class Sessions {
  readonly #store: SessionStore
  readonly #idle: number
  readonly #absolute: number
  readonly #now: () => number
  readonly #revoke: SessionsOptions['revoke']

  constructor(
    store: SessionStore,
    timeouts: Pick<GatehouseConfig['session'], 'idleTimeout' | 'absoluteTimeout'>,
    now: () => number,
    options: SessionsOptions = {},
  ) {
    this.#store = store
    this.#idle = timeouts.idleTimeout
    this.#absolute = timeouts.absoluteTimeout
    this.#now = now
    this.#revoke = options.revoke
  }

  get store(): SessionStore {
    return this.#store
  }

  /** The session the request's cookie names and opens, without reading it; for a socket's later checks. */
  refOf(request: FastifyRequest): SessionRef | undefined {
    const key = SessionKey.fromCookie(request.session.get('key'))
    return key && { id: key.sessionId, key }
  }

  async current(request: FastifyRequest): Promise<SessionData | undefined> {
    const ref = this.refOf(request)
    if (!ref) {
      if (await this.#endPreviousFormat(request)) request.session.delete()
      return undefined
    }
    let session: SessionData | undefined
    try {
      session = await inSpan('gatehouse.session.read', {}, async (span) => {
        const found = await this.#store.get(ref, this.#now())
        span?.setAttribute(ATTR.sessionFound, found !== undefined)
        return found
      })
    } catch (err) {
      if (!isGatehouseError(err) || err.code !== 'GATEHOUSE_ERR_SESSION_UNREADABLE') throw err
      // Tampered with in the store, or moved from another record: refused
      // like a forged cookie. The reason is logged, never the value.
      const code: LogCode = 'GATEHOUSE_SESSION_UNREADABLE'
      request.log.warn({ code, reason: err.cause }, 'session record did not open with the cookie key')
    }
    if (session && refreshTokenExpired(session, this.#now())) {
      await this.#store.delete(session.id)
      request.session.delete()
      return undefined
    }
    if (!session) request.session.delete()
    return session
  }

  /**
   * Starts a session under a new random key, and so a new id, whatever
   * cookie came in, so an attacker who planted a cookie learns nothing
   * (session fixation).
   */
  async create(request: FastifyRequest, login: LoginResult): Promise<SessionData> {
    const previous = this.refOf(request)
    if (previous) await this.#store.delete(previous.id)
    else await this.#endPreviousFormat(request)
    const now = this.#now()
    const absoluteExpiresAt = now + this.#absolute
    const key = SessionKey.generate()
    const session: SessionData = {
      id: key.sessionId,
      key,
      idp: login.idp,
      sub: login.sub,
      sid: login.sid,
      claims: login.claims,
      tokens: login.tokens,
      ...(login.dpopKey ? { dpopKey: login.dpopKey } : {}),
      version: 0,
      createdAt: now,
      absoluteExpiresAt,
      idleExpiresAt: Math.min(now + this.#idle, absoluteExpiresAt),
      logoutHandle: randomBytes(16).toString('base64url'),
    }
    await this.#store.create(session)
    request.session.regenerate()
    request.session.set('key', key.toCookie())
    return session
  }

  async destroy(request: FastifyRequest, session: SessionData): Promise<void> {
    await this.#store.delete(session.id)
    request.session.delete()
  }

  /**
   * A cookie of the previous version carries the record id and no key. Its
   * record holds plaintext tokens, which this version never uses: the
   * session ends (record and index entries gone, refresh token revoked) and
   * the user signs in again. Of many requests racing on one such cookie,
   * the store's atomic delete hands the tokens to one. True when the
   * cookie was such a cookie, which the caller then clears or replaces.
   */
  async #endPreviousFormat(request: FastifyRequest): Promise<boolean> {
    const id = request.session.get('id')
    if (typeof id !== 'string') return false
    const ended = await this.#store.endPreviousFormat?.(id)
    if (!ended) return true
    const code: LogCode = 'GATEHOUSE_SESSION_PREVIOUS_FORMAT'
    request.log.info({ code }, 'session of the previous version ended: its tokens were not sealed')
    if (ended.refreshToken) await this.#revoke?.(ended.refreshToken)
    return true
  }
}
