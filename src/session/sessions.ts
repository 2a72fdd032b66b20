import { randomBytes } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { type ErrorCode, gatehouseError, isGatehouseError, type LogCode } from '../errors.js'
import { sessionNamespace } from '../redis/keys.js'
import { ATTR, inSpan, recording } from '../tracing/spans.js'
import type { DpopKey, LoginResult } from '../types.js'
import { sessionLogId } from './log-id.js'
import type { SealedCookie } from './sealed-cookie.js'
import { SessionKey } from './session-key.js'
import {
  type EndedSession,
  NOT_IN_MEMORY,
  type SessionData,
  type SessionRef,
  type SessionStore,
  type TakenSession,
  type UserLoggedOut,
} from './types.js'

/** How many sessions `endAll` ends at once. */
const END_AT_ONCE = 32

/**
 * How long a session a sign-in replaced is remembered as such: longer than
 * any request the browser sent with its cookie before the sign-in's new
 * cookie arrived takes to reach the gateway, and short enough that a
 * cookie the browser kept (the sign-in's answer lost) is cleared soon after.
 */
const REPLACED_TTL_MS = 5 * 60_000 // 5 min

/** A session of the previous version, ended, whose refresh token is to be given back. */
export interface PreviousSession extends EndedSession {
  readonly id: string
  readonly refreshToken: string
}

/** What `Sessions` needs beyond the store. */
export interface SessionsOptions {
  /**
   * Gives back the grant of a session the previous version wrote, which
   * is ended rather than used: revokes its refresh token at the IdP (RFC
   * 7009) unless another session may share its grant, as logout does.
   * `signedIn`: the sign-in that ended it, whose session is not stored
   * yet. Must not reject; absent, such tokens are left to expire.
   */
  readonly giveBack?: (
    request: FastifyRequest,
    ended: PreviousSession,
    signedIn: LoginResult | undefined,
  ) => Promise<void>
  /**
   * The frontend whose sessions these are (`frontends[].name`); `''` for
   * the one frontend of a config without `frontends:`. A named frontend's
   * session ids are `<name>:<id>` (redis/keys.ts), so a cookie key carried
   * to another frontend names a record that does not exist there.
   */
  readonly frontend?: string
  /**
   * The request's session cookie. Default `request.session`; a gateway
   * serving several cookie names passes the one that applies.
   */
  readonly cookie?: ((request: FastifyRequest) => SealedCookie) | undefined
  /** Told of the sessions read and ended here; absent, no one is. */
  readonly ends?: SessionEnds | undefined
  /**
   * Told of each request whose session record did not open with its
   * cookie's key, with the reason (`refused`, `malformed`, `unknown-key`):
   * nothing but the gateway writes those records, so an operator alerts on it.
   */
  readonly onUnreadable?: ((reason: string) => void) | undefined
}

/**
 * What the process keeps of a session beyond the store, told when the
 * session is read and when it ends: the caches of DPoP keys
 * (src/dpop/held-keys.ts), which must not keep a key past its session:
 * logout destroys the key, since whoever holds a copy can use the
 * session's bound tokens. An end is told once the store has deleted the record.
 */
export interface SessionEnds {
  /** A session with a DPoP key was read, or made. */
  seen(id: string, key: DpopKey): void
  /** The session ended, or a read found it gone; `key` when the record was at hand. */
  ended(id: string, key?: DpopKey): void
}

/** The session a cookie's content names: its key, and the record id derived from it (an HMAC). */
function refFrom(data: Readonly<Record<string, unknown>>): SessionRef | undefined {
  const key = SessionKey.fromCookie(data.key)
  return key && { id: key.sessionId, key }
}

const requestSession = (request: FastifyRequest) => request.session as unknown as SealedCookie

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
 * record is gone, or does not open, is cleared on the way out, unless a
 * sign-in replaced its session a moment ago (`SessionStore.replaced`).
 */
export class Sessions {
  readonly #store: SessionStore
  readonly #idle: number
  readonly #absolute: number
  readonly #now: () => number
  readonly #giveBack: SessionsOptions['giveBack']
  /** Prepended to every id: `''`, or `<frontend>:`. */
  readonly #namespace: string
  /** The cookie's session, its id in this frontend's namespace. */
  readonly #refFrom: (data: Readonly<Record<string, unknown>>) => SessionRef | undefined
  readonly #cookie: (request: FastifyRequest) => SealedCookie
  readonly #ends: SessionEnds | undefined
  readonly #onUnreadable: SessionsOptions['onUnreadable']

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
    this.#giveBack = options.giveBack
    this.#namespace = sessionNamespace(options.frontend ?? '')
    const namespace = this.#namespace
    // One function per instance: the opened cookie keeps what it derives.
    this.#refFrom =
      namespace === ''
        ? refFrom
        : (data) => {
            const ref = refFrom(data)
            return ref && { id: namespace + ref.id, key: ref.key }
          }
    this.#cookie = options.cookie ?? requestSession
    this.#ends = options.ends
    this.#onUnreadable = options.onUnreadable
  }

  get store(): SessionStore {
    return this.#store
  }

  /** The time by the clock these sessions expire by (injectable, as every expiry's). */
  now(): number {
    return this.#now()
  }

  /** The session the request's cookie names and opens, without reading it; for a socket's later checks. */
  refOf(request: FastifyRequest): SessionRef | undefined {
    // Kept with the opened cookie: the id's HMAC is paid once per cookie value.
    return this.#cookie(request).derived(this.#refFrom)
  }

  /**
   * The session a key in cookie form names, in this frontend's namespace:
   * the one a login noted the browser held (`LoginState.heldKey`).
   */
  refOfKey(key: string): SessionRef | undefined {
    return this.#refFrom({ key })
  }

  /**
   * True when session `id` is one of this frontend's. The sub and sid
   * indexes list the sessions of every frontend (redis/keys.ts); a named
   * one's ids start `<name>:`, and the ids of a config without
   * `frontends:` hold no colon (a base64url HMAC).
   */
  owns(id: string): boolean {
    return this.#namespace === '' ? !id.includes(':') : id.startsWith(this.#namespace)
  }

  /**
   * Session `ref` as its store holds it now, without sliding its idle
   * expiry: a look that is not the user's activity, such as a sign-in's at
   * the session it is about to replace. Rejects as the store's `get` does.
   */
  read(ref: SessionRef): Promise<SessionData | undefined> {
    return this.#store.get(ref, this.#now(), { fresh: true, touch: false })
  }

  /**
   * The request's session without waiting, when the store holds it in this
   * process (`SessionStore.peek`): `NOT_IN_MEMORY` when only `current` can
   * tell, which the caller then awaits. Whatever it answers, `current`
   * would have answered the same.
   */
  peek(request: FastifyRequest): SessionData | undefined | typeof NOT_IN_MEMORY {
    const peek = this.#store.peek
    // In a sampled trace, the read is a span of its own (`current`).
    if (peek === undefined || recording()) return NOT_IN_MEMORY
    const cookie = this.#cookie(request)
    const ref = cookie.derived(this.#refFrom)
    if (!ref) return typeof cookie.get('id') === 'string' ? NOT_IN_MEMORY : undefined
    const now = this.#now()
    let session: SessionData | undefined | typeof NOT_IN_MEMORY
    try {
      session = peek.call(this.#store, ref, now)
    } catch {
      // A record the key does not open: `current` logs and refuses it.
      return NOT_IN_MEMORY
    }
    // Gone: whether its cookie is cleared takes a store read (`SessionStore.replaced`), which `current` makes.
    if (session === NOT_IN_MEMORY || session === undefined) return NOT_IN_MEMORY
    // Ending a session whose refresh token has expired is a store write: `current` does it.
    if (refreshTokenExpired(session, now)) return NOT_IN_MEMORY
    if (session.dpopKey) this.#ends?.seen(session.id, session.dpopKey)
    cookie.bound(sessionEndsAt(session))
    return session
  }

  async current(request: FastifyRequest): Promise<SessionData | undefined> {
    const cookie = this.#cookie(request)
    const ref = this.refOf(request)
    if (!ref) {
      if (await this.#endPreviousFormat(request)) cookie.delete()
      return undefined
    }
    let session: SessionData | undefined
    let unreadable = false
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
      this.#onUnreadable?.(String(err.cause))
      unreadable = true
    }
    if (session && refreshTokenExpired(session, this.#now())) {
      await this.#delete(session.id, session.dpopKey)
      cookie.delete()
      const code: ErrorCode = 'GATEHOUSE_ERR_SESSION_EXPIRED'
      request.log.info(
        { code, session: sessionLogId(session.id), idp: session.idp },
        'session ended: its refresh token expired when the identity provider said it would (refresh_expires_in)',
      )
      return undefined
    }
    if (!session) {
      // Gone (ended elsewhere, or expired), or not this key's to open.
      this.#ends?.ended(ref.id)
      // Not one a sign-in in this browser replaced: this request was sent
      // before the sign-in's answer gave the browser the new session's
      // cookie, and a cleared name is cleared whatever value the browser
      // holds by the time this answer comes, so the user who has just
      // signed in would be signed out by the gateway's own race.
      if (unreadable || !(await this.#store.replaced(ref.id))) cookie.delete()
      return undefined
    }
    if (session.dpopKey) this.#ends?.seen(session.id, session.dpopKey)
    // The cookie's opening is served no longer than the session lives.
    cookie.bound(sessionEndsAt(session))
    return session
  }

  /**
   * Starts a session under a new random key, and so a new id, whatever
   * cookie came in, so an attacker who planted a cookie learns nothing
   * (session fixation). The session it replaces ends: the cookie's, or
   * `heldAtLogin`, the one the browser held when the login started, which
   * a `SameSite=Strict` cookie does not bring to the callback.
   */
  async create(request: FastifyRequest, login: LoginResult, heldAtLogin?: string): Promise<SessionData> {
    const previous = this.refOf(request)?.id ?? heldAtLogin
    if (previous !== undefined) {
      // Noted before the delete, so that no request finds the record gone
      // and the note not yet there; noted whether or not the session was
      // still live, since either way the browser is about to hold the new
      // cookie, which the old one's requests must not clear.
      await this.#store.noteReplaced(previous, REPLACED_TTL_MS)
      await this.end(previous)
    } else await this.#endPreviousFormat(request, login)
    const now = this.#now()
    const absoluteExpiresAt = now + this.#absolute
    const key = SessionKey.generate()
    const session: SessionData = {
      id: this.#namespace + key.sessionId,
      key,
      idp: login.idp,
      registration: login.registration,
      sub: login.sub,
      sid: login.sid,
      claims: login.claims,
      tokens: login.tokens,
      ...(login.dpopKey ? { dpopKey: login.dpopKey } : {}),
      ...(login.resources ? { resources: login.resources } : {}),
      version: 0,
      createdAt: now,
      absoluteExpiresAt,
      idleExpiresAt: Math.min(now + this.#idle, absoluteExpiresAt),
      logoutHandle: randomBytes(16).toString('base64url'),
    }
    // Before the write: the login has already made the key's IdP handle.
    if (session.dpopKey) this.#ends?.seen(session.id, session.dpopKey)
    try {
      await this.#store.create(session)
      // A back-channel logout of this IdP session that listed its sessions
      // before this record was written could not end it: the IdP signed the
      // user out while this sign-in completed (its code already redeemed,
      // or an IdP that does not revoke codes at logout), and the session
      // would outlive it. The logout notes the sid before it lists, and this
      // looks after the write, so one of the two sees the other.
      if (
        session.sid &&
        session.registration &&
        (await this.#store.sidLoggedOut(session.registration, session.sid))
      )
        throw gatehouseError(
          'GATEHOUSE_ERR_LOGIN_FAILED',
          "The identity provider ended this sign-in's session (back-channel logout) while the sign-in completed.",
        )
      // A logout naming only the user (§2.4: every session of theirs) can
      // tell no IdP session, so it goes by time: one that came after this
      // sign-in started, by the gateway's clock, ends it, as it would have
      // ended it listed. A sign-in the user began after it stands, and so
      // does one that began before it whose user authenticated anew after
      // it (authenticatedAfter); without an auth_time to say so, it ends,
      // the cost of one more sign-in.
      if (session.registration && login.startedAt !== undefined) {
        const loggedOut = await this.#store.subLoggedOutAt(session.registration, session.sub)
        if (
          loggedOut !== undefined &&
          login.startedAt <= loggedOut.at &&
          !authenticatedAfter(login.authTime, loggedOut)
        )
          throw gatehouseError(
            'GATEHOUSE_ERR_LOGIN_FAILED',
            "The identity provider logged this sign-in's user out (back-channel logout) while the sign-in completed.",
          )
      }
    } catch (err) {
      // A write no replica confirmed has run on the primary all the same:
      // a record no cookie will ever name, counted in its user's indexes
      // until it expires. Best effort; the create's failure is the answer.
      await this.#store.delete(session.id).catch(() => {})
      // Whether or not the delete went through, no one will sign with the key.
      this.#ends?.ended(session.id, session.dpopKey)
      throw err
    }
    const cookie = this.#cookie(request)
    cookie.regenerate()
    cookie.set('key', key.toCookie())
    return session
  }

  async destroy(request: FastifyRequest, session: SessionData): Promise<void> {
    await this.#delete(session.id, session.dpopKey)
    this.#cookie(request).delete()
  }

  /**
   * Ends session `id`, whose cookie is not at hand: a back-channel logout,
   * "log out everywhere", a new login over an old session.
   */
  async end(id: string): Promise<void> {
    await this.#delete(id)
  }

  /**
   * Ends every session of `ids` (a logout token's, "log out everywhere"'s),
   * END_AT_ONCE at a time: one after another, a user with ten thousand
   * sessions waited six seconds on the store's round trips; all at once,
   * one logout would queue them all on the store's connection. Resolves
   * to those whose record it removed: not those gone already.
   */
  endAll(ids: readonly string[]): Promise<string[]> {
    return this.#endInBatches(ids, async (id) => ((await this.#delete(id)) ? id : undefined))
  }

  /**
   * Ends every session of `ids` as `endAll` does, and resolves to what the
   * store held in the clear of the grant of each it removed
   * (`SessionStore.take`): "log out everywhere" revokes them.
   */
  takeAll(ids: readonly string[]): Promise<Array<TakenSession & { readonly id: string }>> {
    return this.#endInBatches(ids, async (id) => {
      const taken = await this.#store.take(id)
      this.#ends?.ended(id)
      return taken && { ...taken, id }
    })
  }

  /** What `end` answers of each session of `ids` it removed, END_AT_ONCE at a time. */
  async #endInBatches<T>(ids: readonly string[], end: (id: string) => Promise<T | undefined>): Promise<T[]> {
    const ended: T[] = []
    for (let from = 0; from < ids.length; from += END_AT_ONCE) {
      const removed = await Promise.all(ids.slice(from, from + END_AT_ONCE).map(end))
      for (const one of removed) if (one !== undefined) ended.push(one)
    }
    return ended
  }

  /**
   * Every end goes through here, so what the process keeps of the session
   * goes with it. True when the store had a record to remove.
   */
  async #delete(id: string, key?: DpopKey): Promise<boolean> {
    const removed = await this.#store.delete(id)
    this.#ends?.ended(id, key)
    return removed
  }

  /**
   * A cookie of the previous version carries the record id and no key. Its
   * record holds plaintext tokens, which this version never uses: the
   * session ends (record and index entries gone, its grant given back as
   * at logout) and the user signs in again, or has: `signedIn`. Of many
   * requests racing on one such cookie, the store's atomic delete hands
   * the tokens to one. True when the cookie was such a cookie, which the
   * caller then clears or replaces.
   */
  async #endPreviousFormat(request: FastifyRequest, signedIn?: LoginResult): Promise<boolean> {
    const id = this.#cookie(request).get('id')
    if (typeof id !== 'string') return false
    // Only the one frontend of before `frontends:` existed has such cookies.
    if (this.#namespace !== '') return true
    const ended = await this.#store.endPreviousFormat?.(id)
    if (!ended) return true
    const code: LogCode = 'GATEHOUSE_SESSION_PREVIOUS_FORMAT'
    request.log.info({ code }, 'session of the previous version ended: its tokens were not sealed')
    const { refreshToken } = ended
    if (refreshToken) await this.#giveBack?.(request, { ...ended, id, refreshToken }, signedIn)
    return true
  }
}

/**
 * Whether the user authenticated at the IdP after its logout of them: the
 * ID token's `auth_time` against the logout token's `iat`, both the IdP's
 * clock (the gateway's would add the skew between the two). Strictly
 * after: both are whole seconds, and in the same one either may have come
 * first; an authentication the logout may have ended is not taken as
 * fresh, which costs a user who signed in again within that second one
 * more sign-in.
 */
function authenticatedAfter(authTime: number | undefined, loggedOut: UserLoggedOut): boolean {
  return authTime !== undefined && loggedOut.iat !== undefined && authTime > loggedOut.iat
}
