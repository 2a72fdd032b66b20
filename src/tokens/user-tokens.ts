import { gatehouseError, isGatehouseError } from '../errors.js'
import type { OidcClient } from '../oidc/client.js'
import type { SessionData, SessionStore } from '../session/types.js'
import { SingleFlight } from './single-flight.js'
import type { LockService } from './types.js'

export interface UserTokensOptions {
  readonly store: SessionStore
  readonly locks: LockService
  readonly oidc: Pick<OidcClient, 'refresh'>
  /** Refresh this long before the access token expires, ms. */
  readonly refreshBefore: number
  /** Longest wait on another instance's refresh, ms. */
  readonly refreshWait: number
  /** Initial lifetime of the cluster refresh lock, ms; it is renewed while held. */
  readonly lockTtl: number
  readonly now: () => number
  /**
   * `none` turns off both in-process coalescing and the cluster lock. It
   * exists only so the test suite can show that the race it guards against
   * is real; never configure it in production.
   */
  readonly coordination?: 'single-flight' | 'none'
  readonly observer?: RefreshObserver
}

export interface RefreshObserver {
  refreshed?(outcome: 'success' | 'invalid_grant' | 'unavailable', ms: number, sessionId: string): void
  joined?(): void
}

/** Every read on the refresh path: never decide to redeem on a per-instance copy. */
const FRESH = { fresh: true } as const

/** Outcomes of a refresh that leave the session in place, so a still-valid token may be used. */
const transient = new Set([
  'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
  'GATEHOUSE_ERR_REFRESH_WAIT_TIMEOUT',
  'GATEHOUSE_ERR_STORE_UNAVAILABLE',
])

/**
 * Hands out a fresh access token for a session, refreshing it at most once
 * however many requests, on however many instances, find it stale at once.
 *
 * Per process, concurrent callers share one flight. Across processes, the
 * flight takes a lock in the store; whoever does not get it waits for its
 * release, re-reads the session and uses the token the holder stored. It
 * never redeems the refresh token on its own: with rotation (RFC 9700
 * §4.14.2) a second redemption would revoke the whole grant.
 */
export class UserTokens {
  readonly #o: UserTokensOptions
  readonly #flight: SingleFlight<SessionData>

  constructor(options: UserTokensOptions) {
    this.#o = options
    this.#flight = new SingleFlight(() => options.observer?.joined?.())
  }

  needsRefresh(session: SessionData): boolean {
    return session.tokens.accessTokenExpiresAt - this.#o.now() <= this.#o.refreshBefore
  }

  async accessToken(session: SessionData): Promise<string> {
    if (!this.needsRefresh(session)) return session.tokens.accessToken
    const stillValid = session.tokens.accessTokenExpiresAt > this.#o.now()
    if (!session.tokens.refreshToken) {
      if (stillValid) return session.tokens.accessToken
      throw gatehouseError(
        'GATEHOUSE_ERR_SESSION_EXPIRED',
        'The access token expired and there is no refresh token.',
      )
    }
    try {
      const fresh =
        this.#o.coordination === 'none'
          ? await this.#redeem(session)
          : await this.#flight.run(session.id, () => this.#refreshOnce(session.id))
      return fresh.tokens.accessToken
    } catch (err) {
      // The IdP or store is down but the token we hold still works: use it
      // and let a later request try again.
      if (stillValid && isGatehouseError(err) && transient.has(err.code)) return session.tokens.accessToken
      throw err
    }
  }

  async #refreshOnce(id: string): Promise<SessionData> {
    const key = `refresh:${id}`
    const lock = await this.#o.locks.tryAcquire(key, this.#o.lockTtl)
    if (!lock) {
      this.#o.observer?.joined?.()
      await this.#o.locks.waitForRelease(key, this.#o.refreshWait)
      const after = await this.#o.store.get(id, this.#o.now(), FRESH)
      if (!after) throw gatehouseError('GATEHOUSE_ERR_SESSION_EXPIRED')
      if (!this.needsRefresh(after)) return after
      // The holder failed; its error is not ours to repeat, and redeeming
      // the refresh token ourselves could replay it.
      throw gatehouseError('GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE')
    }
    try {
      // Re-read under the lock: another instance may have refreshed between
      // our read and our acquire, and its refresh token is the live one.
      const current = await this.#o.store.get(id, this.#o.now(), FRESH)
      if (!current) throw gatehouseError('GATEHOUSE_ERR_SESSION_EXPIRED')
      if (!this.needsRefresh(current)) return current
      return await this.#redeem(current)
    } finally {
      await lock.release()
    }
  }

  async #redeem(current: SessionData): Promise<SessionData> {
    const started = this.#o.now()
    let tokens: SessionData['tokens']
    try {
      tokens = await this.#o.oidc.refresh(current.tokens)
    } catch (err) {
      const expired = isGatehouseError(err) && err.code === 'GATEHOUSE_ERR_SESSION_EXPIRED'
      this.#o.observer?.refreshed?.(
        expired ? 'invalid_grant' : 'unavailable',
        this.#o.now() - started,
        current.id,
      )
      if (expired) await this.#o.store.delete(current.id)
      throw err
    }
    this.#o.observer?.refreshed?.('success', this.#o.now() - started, current.id)
    const result = await this.#o.store.updateTokens(current.id, current.version, tokens)
    if (result === 'missing') throw gatehouseError('GATEHOUSE_ERR_SESSION_EXPIRED')
    if (result === 'stale') {
      // Only reachable without coordination, or if the lock was lost: the
      // stored tokens are newer than ours, so keep them and use them.
      const stored = await this.#o.store.get(current.id, this.#o.now(), FRESH)
      if (!stored) throw gatehouseError('GATEHOUSE_ERR_SESSION_EXPIRED')
      return stored
    }
    return { ...current, tokens, version: current.version + 1 }
  }
}
