import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import type { RouteConfig } from '../../config/types.js'
import { isGatehouseError } from '../../errors.js'
import { sessionEndsAt } from '../../session/sessions.js'
import type { SessionData, SessionRef } from '../../session/types.js'
import { type SessionAudience, sessionAudience } from '../../tokens/audience.js'
import { tokenFor } from '../../tokens/token-set.js'
import type { TokenAudience } from '../../types.js'
import { type GuardDeps, lastsAsRemoved, tokenOfSession } from '../guard.js'
import type { SocketCloser } from './relay.js'

/** Close code when the socket's session has ended: the 401 of a socket (private-use range, RFC 6455 §7.4.2). */
export const CLOSE_SESSION_ENDED = 4401
/** Close code when the socket's token expired and could not be refreshed: RFC 6455 registry's "Try Again Later". */
export const CLOSE_TOKEN_UNAVAILABLE = 1013

/** How often each open socket's session is re-read, ms: the bound on closing it after the session ends. */
export const RECHECK_INTERVAL = 5_000 // 5 s

export interface SocketWatchOptions {
  readonly now: () => number
  readonly log: FastifyBaseLogger
  /** ms; default RECHECK_INTERVAL. */
  readonly interval?: number
}

/** A watched socket: its session, and whether the browser has sent a message since the last check. */
interface Watched {
  /** The session, with the key from the cookie of the upgrade that opened the socket. */
  readonly ref: SessionRef
  /** Closes both legs: the upstream is told at once, whether or not the browser answers. */
  readonly close: SocketCloser
  active: boolean
  /** A check of this socket is under way. */
  checking: boolean
  /** The store reported a change during that check, which may have read the session before it. */
  again: boolean
  /**
   * The session's absolute expiry, epoch ms, once a check has read it:
   * nothing moves it, so it ends the socket even while the store cannot
   * be read.
   */
  absoluteExpiresAt?: number
}

/**
 * Closes a route's sockets whose session has ended. The token rides on the
 * upgrade only, so the upstream cannot tell. Each open socket's session is
 * re-read on a timer: it sees a logout, a back-channel logout or an expiry
 * made on any instance, at the cost of one read per socket per interval
 * (a local-cache hit with the Redis store, dropped as soon as Redis reports
 * the change). A token due for refresh is refreshed through UserTokens, as an
 * HTTP call would; `invalid_grant` ends the session and the socket.
 *
 * The timer is the bound; the store's change hints (`SessionStore.onChange`)
 * make it the exception: a session this process deletes, or one Redis
 * reports changed (a logout or a back-channel logout on any instance, with
 * the local cache on), is read again at once, and its sockets close within
 * a round trip instead of up to an interval later.
 *
 * The read does not slide the idle expiry (`touch: false`): an open socket
 * is not a user at work, and a silent one must not keep its session alive
 * past `idleTimeout`. A message the browser sent is activity, as an API call
 * is: the next check after one reads with the touch, which the store
 * throttles to one write per session per tenth of `idleTimeout`, however
 * many messages there were. What the upstream sends, and pings and pongs,
 * are not the user's doing and do not count.
 */
export class SocketWatch {
  readonly #deps: GuardDeps
  readonly #route: RouteConfig
  readonly #audience: SessionAudience
  readonly #now: () => number
  readonly #log: FastifyBaseLogger
  /** Each socket's session, with the key from the cookie of the upgrade that opened it. */
  readonly #open = new Map<WebSocket, Watched>()
  /** The same sockets by session id, for the store's hints. */
  readonly #bySession = new Map<string, Set<WebSocket>>()
  readonly #timer: NodeJS.Timeout
  readonly #unhear: () => void
  #sweeping = false

  constructor(route: RouteConfig, deps: GuardDeps, options: SocketWatchOptions) {
    this.#route = route
    this.#audience = sessionAudience(route)
    this.#deps = deps
    this.#now = options.now
    this.#log = options.log
    this.#timer = setInterval(() => void this.#sweep(), options.interval ?? RECHECK_INTERVAL)
    this.#timer.unref()
    this.#unhear = deps.sessions.store.onChange((id) => this.#heard(id))
  }

  /** Both legs of a socket are open: watch it, if the route's token depends on the request's session. */
  opened(source: WebSocket, request: FastifyRequest, close: SocketCloser): void {
    if (!tokenOfSession(this.#route)) return
    const ref = this.#deps.sessions.refOf(request)
    if (!ref) return
    const watched: Watched = { ref, close, active: false, checking: false, again: false }
    this.#open.set(source, watched)
    let sockets = this.#bySession.get(ref.id)
    if (!sockets) {
      sockets = new Set()
      this.#bySession.set(ref.id, sockets)
    }
    sockets.add(source)
    source.on('message', () => {
      watched.active = true
    })
    source.once('close', () => this.#forget(source, watched))
    // Read at once: the guard read the session before the upstream's
    // handshake, which may take the route's whole timeout, and a hint
    // that came meanwhile named a socket not yet watched (a logout then
    // was answered with a 101).
    void this.#check(source, watched)
  }

  close(): void {
    clearInterval(this.#timer)
    this.#unhear()
  }

  #forget(socket: WebSocket, watched: Watched): void {
    this.#open.delete(socket)
    const sockets = this.#bySession.get(watched.ref.id)
    sockets?.delete(socket)
    if (sockets?.size === 0) this.#bySession.delete(watched.ref.id)
  }

  /** The store says the session may have changed: its sockets read it now, not at the next sweep. */
  #heard(id: string): void {
    const sockets = this.#bySession.get(id)
    if (!sockets) return
    for (const socket of sockets) {
      const watched = this.#open.get(socket)
      if (watched) void this.#check(socket, watched)
    }
  }

  async #sweep(): Promise<void> {
    if (this.#sweeping || this.#open.size === 0) return
    this.#sweeping = true
    try {
      await Promise.all(Array.from(this.#open, ([socket, watched]) => this.#check(socket, watched)))
    } finally {
      this.#sweeping = false
    }
  }

  /**
   * One check of a socket at a time: a hint that comes during one is kept
   * and checked after it, since the read under way may have been answered
   * before the change it reports.
   */
  async #check(socket: WebSocket, watched: Watched): Promise<void> {
    if (watched.checking) {
      watched.again = true
      return
    }
    watched.checking = true
    try {
      do {
        watched.again = false
        await this.#checkOnce(socket, watched)
      } while (watched.again && this.#open.has(socket))
    } finally {
      watched.checking = false
    }
  }

  async #checkOnce(socket: WebSocket, watched: Watched): Promise<void> {
    const touch = watched.active
    watched.active = false
    let verdict: readonly [number, string] | undefined
    try {
      verdict = await this.#verdict(watched, touch)
    } catch (err) {
      // Past its absolute expiry the session is over whatever the store
      // would say; its idle expiry another instance may have slid.
      const over = (watched.absoluteExpiresAt ?? Number.POSITIVE_INFINITY) <= this.#now()
      if (over || (isGatehouseError(err) && err.code === 'GATEHOUSE_ERR_SESSION_UNREADABLE')) {
        this.#forget(socket, watched)
        watched.close(CLOSE_SESSION_ENDED, 'session ended')
        return
      }
      // The store is unreachable: the session may well be alive, and the
      // next sweep asks again, with the activity it has not recorded.
      watched.active ||= touch
      this.#log.debug({ route: this.#route.path, err }, 'websocket session check failed')
      return
    }
    if (verdict === undefined) return
    this.#forget(socket, watched)
    watched.close(verdict[0], verdict[1])
  }

  async #verdict(watched: Watched, touch: boolean): Promise<readonly [number, string] | undefined> {
    const now = this.#now()
    const session = await this.#deps.sessions.store.get(watched.ref, now, { touch })
    if (session) watched.absoluteExpiresAt = session.absoluteExpiresAt
    // The refresh token's own expiry ends the session too (sessionEndsAt),
    // and the store does not know about it.
    if (!session || sessionEndsAt(session) <= now) return [CLOSE_SESSION_ENDED, 'session ended']
    // A removed provider's session ends when its login token is due, on
    // every route: the gateway's token rode on a client route's upgrade,
    // and a route token of its own (exchanged, or for a resource) may
    // outlive the login token by most of its lifetime.
    if (lastsAsRemoved(session, this.#deps)) {
      const ended = await this.#tokenVerdict(session, now, undefined)
      if (ended !== undefined) return ended
    }
    if (this.#route.token === 'client') return undefined
    return this.#tokenVerdict(session, now, this.#audience(session))
  }

  async #tokenVerdict(
    session: SessionData,
    now: number,
    audience: TokenAudience | undefined,
  ): Promise<readonly [number, string] | undefined> {
    const { userTokens } = this.#deps
    if (!userTokens.needsRefresh(session, audience)) return undefined
    try {
      await userTokens.accessToken(session, audience)
      return undefined
    } catch (err) {
      if (isGatehouseError(err) && err.code === 'GATEHOUSE_ERR_SESSION_EXPIRED')
        return [CLOSE_SESSION_ENDED, 'session ended']
      const expiresAt = tokenFor(session.tokens, audience)?.accessTokenExpiresAt ?? 0
      return expiresAt <= now ? [CLOSE_TOKEN_UNAVAILABLE, 'token unavailable'] : undefined
    }
  }
}
