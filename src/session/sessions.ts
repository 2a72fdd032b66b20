import { randomBytes } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import type { LoginResult } from '../types.js'
import type { SessionData, SessionStore } from './types.js'

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
    const session = await this.#store.get(id, this.#now())
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
