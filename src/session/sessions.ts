import { randomBytes } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import type { LoginResult } from '../types.js'
import type { SessionData, SessionStore } from './types.js'

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
 * holds only `id`; a cookie whose record is gone is cleared on the way out.
 */
export class Sessions {
  readonly #store: SessionStore
  readonly #idle: number
  readonly #absolute: number
  readonly #now: () => number

  constructor(store: SessionStore, config: GatehouseConfig, now: () => number) {
    this.#store = store
    this.#idle = config.session.idleTimeout
    this.#absolute = config.session.absoluteTimeout
    this.#now = now
  }

  get store(): SessionStore {
    return this.#store
  }

  async current(request: FastifyRequest): Promise<SessionData | undefined> {
    const id = request.session.get('id')
    if (typeof id !== 'string') return undefined
    const now = this.#now()
    const session = await this.#store.get(id, now)
    if (session && refreshTokenExpired(session, now)) {
      await this.#store.delete(id)
      request.session.delete()
      return undefined
    }
    if (!session) request.session.delete()
    return session
  }

  /**
   * Starts a session under a new random id, whatever cookie came in, so an
   * attacker who planted a session id learns nothing (session fixation).
   */
  async create(request: FastifyRequest, login: LoginResult): Promise<SessionData> {
    const previous = request.session.get('id')
    if (typeof previous === 'string') await this.#store.delete(previous)
    const now = this.#now()
    const absoluteExpiresAt = now + this.#absolute
    const session: SessionData = {
      id: randomBytes(32).toString('base64url'),
      sub: login.sub,
      sid: login.sid,
      claims: login.claims,
      tokens: login.tokens,
      version: 0,
      createdAt: now,
      absoluteExpiresAt,
      idleExpiresAt: Math.min(now + this.#idle, absoluteExpiresAt),
      logoutHandle: randomBytes(16).toString('base64url'),
    }
    await this.#store.create(session)
    request.session.regenerate()
    request.session.set('id', session.id)
    return session
  }

  async destroy(request: FastifyRequest, session: SessionData): Promise<void> {
    await this.#store.delete(session.id)
    request.session.delete()
  }
}
