/**
 * Server-side session records and the contract every session store meets.
 *
 * The browser only ever holds a sealed cookie with the session's key; the
 * record's id is derived from it, and everything below stays on the server.
 * A shared store keeps the record's secret fields sealed with that key.
 */
import type { ClientRegistration, DpopKey, TokenSet } from '../types.js'
import type { SessionKey } from './session-key.js'

/**
 * Which record, and the key that opens it. Every read and token write
 * needs both, so no request can be handed a session its cookie does not
 * open; deletes and index lookups need only the id (back-channel logout has
 * no cookie).
 */
export interface SessionRef {
  /** 256-bit, base64url; the store key. Derived from `key` for sessions made at login. */
  readonly id: string
  /** The session's sealing key, from the cookie; never stored server-side. */
  readonly key: SessionKey
}

export interface SessionData extends SessionRef {
  /**
   * The provider that signed the user in (`identityProviders[].name`):
   * every refresh, revocation and logout of the session goes to it, and
   * only its back-channel logouts can end it.
   */
  readonly idp: string
  /**
   * The issuer and client id that issued the session's tokens. A reload
   * may give the name another; the session's tokens then go nowhere
   * (`IdentityProviders.ofSession`). Absent: sealed before it was recorded.
   */
  readonly registration?: ClientRegistration | undefined
  readonly sub: string
  /** The IdP's session id (`sid` claim), for back-channel logout. */
  readonly sid?: string | undefined
  /** A subset of the ID token claims, shown at `/auth/user`. */
  readonly claims: Readonly<Record<string, unknown>>
  readonly tokens: TokenSet
  /**
   * The session's DPoP key pair (RFC 9449), made at its login: every token
   * of the session is bound to it. Kept only here, sealed in a shared
   * store; it goes with the record at logout.
   */
  readonly dpopKey?: DpopKey | undefined
  /**
   * The resources its login's authorization request named (RFC 8707 §2):
   * its refresh token is redeemed for no other (§2.2). Absent when not
   * known: a session from before sessions recorded them, or a login the
   * configuration changed under (`askedResources`).
   */
  readonly resources?: readonly string[] | undefined
  /**
   * Bumped on every token update. Writers compare-and-set on it so a slow
   * request can never put back a refresh token that has been rotated away.
   */
  readonly version: number
  readonly createdAt: number
  readonly absoluteExpiresAt: number
  /** Sliding expiry; moved forward by `touch`, never past `absoluteExpiresAt`. */
  readonly idleExpiresAt: number
  /** Random value that a logout link must carry, so other sites cannot log users out. */
  readonly logoutHandle: string
}

export type UpdateResult = 'updated' | 'stale' | 'missing'

/** Whether a session with this registration (absent: sealed before it was recorded) is one a lookup wants. */
export type IssuedBy = (registration: ClientRegistration | undefined) => boolean

/** What ending a session of the previous version leaves to do. */
export interface EndedSession {
  /** Its refresh token, to revoke at the IdP (RFC 7009) unless another session may share its grant. */
  readonly refreshToken?: string
  /** Its user, by whom the sessions that may share its grant are found; absent from a record without one. */
  readonly sub?: string
  /** Its IdP session. */
  readonly sid?: string
}

export interface ReadOptions {
  /**
   * Read the shared record itself, never this instance's copy of it. For
   * decisions that must see every instance's latest write, above all
   * whether to redeem a refresh token: a copy a moment old could hold one
   * that another instance has already rotated.
   */
  readonly fresh?: boolean
  /**
   * `false` reads without sliding the idle expiry: a look at the session
   * that is not the user's activity, such as the WebSocket session watch
   * or a refresh re-reading the session an HTTP call has already touched.
   * It never writes, not even the throttled touch; a session past its idle
   * or absolute expiry is still absent. Default `true`.
   */
  readonly touch?: boolean
}

/**
 * A live session of a user, as `SessionStore.sessionsOfUser` lists it for
 * the per-user bound (`session.maxPerUser`): enough to tell the oldest,
 * and, where the store holds it unsealed, the grant its end may revoke.
 */
export interface SessionOfUser {
  readonly id: string
  /**
   * When it was made, epoch ms: which is oldest. 0 for a Redis record
   * written before records kept it in the clear, which is older than any
   * that does.
   */
  readonly createdAt: number
  /**
   * When its refresh token expires, as the IdP said
   * (`TokenSet.refreshTokenExpiresAt`), epoch ms; past it the session can
   * never refresh again and ends at its next read (`Sessions.current`).
   * Absent when not known: not said, or a Redis record whose tokens an
   * instance of a release before this one wrote (it keeps the expiry in
   * the clear, tagged with the version of the tokens it belongs to).
   */
  readonly refreshTokenExpiresAt?: number
  /**
   * Its refresh token and whose grant it is, in the memory store, which
   * holds its records unsealed. A shared store seals them with a key only
   * the session's cookie carries, so it cannot tell (docs/security.md).
   */
  readonly grant?: HeldGrant
}

/** What `SessionStore.take` hands back of a session it removed. */
export interface TakenSession {
  /**
   * Its refresh token and whose grant it is, in the memory store, which
   * holds its records unsealed. A shared store seals them with a key only
   * the session's cookie carries (docs/security.md), and hands back none.
   */
  readonly grant?: HeldGrant
}

/** What says whose grant a session's refresh token continues (`http/sign-in-grants.ts`). */
export type HeldGrant = Pick<SessionData, 'idp' | 'registration' | 'sub' | 'sid'> & {
  readonly refreshToken: string
}

/** `SessionStore.peek`'s answer when only `get` can tell: the record is not held in this process. */
export const NOT_IN_MEMORY: unique symbol = Symbol('not in memory')

export interface SessionStore {
  readonly kind: 'memory' | 'redis'
  /** Stores a new session; a shared store seals its secret fields with `session.key`. */
  create(session: SessionData): Promise<void>
  /**
   * Returns the live session or `undefined` when absent or expired. Slides
   * the idle expiry when enough of it has elapsed (a throttled touch that
   * never rewrites token fields), unless `options.touch` is `false`. Rejects
   * with `GATEHOUSE_ERR_SESSION_UNREADABLE` when `ref.key` does not open the
   * record (a tampered record, or a key that is not the session's).
   */
  get(ref: SessionRef, now: number, options?: ReadOptions): Promise<SessionData | undefined>
  /**
   * `get(ref, now)` answered without waiting, when this process holds what
   * `get` would answer (the memory store always; a shared store from its
   * local copy, when `get` would serve that copy). `NOT_IN_MEMORY`
   * otherwise, and `get` must be asked. Same touch and same refusals as `get`.
   */
  peek?(ref: SessionRef, now: number): SessionData | undefined | typeof NOT_IN_MEMORY
  /**
   * Replaces the tokens iff the stored version still equals `expectedVersion`;
   * the stored version becomes `expectedVersion + 1`. The tokens are sealed
   * with `ref.key`, which must be the one the session was read with.
   */
  updateTokens(ref: SessionRef, expectedVersion: number, tokens: TokenSet): Promise<UpdateResult>
  /** Removes the session and its index entries; true when there was a record to remove. */
  delete(id: string): Promise<boolean>
  /**
   * Removes the session as `delete` does, and hands back what the store
   * holds in the clear of its grant, for "log out everywhere", which
   * revokes the grants of the sessions it ends: read as the record goes,
   * so a refresh just before hands back the rotated token, not the one
   * it replaced. `undefined` when there was no record to remove.
   */
  take(id: string): Promise<TakenSession | undefined>
  /**
   * Notes for `ttlMs`, where every instance sees it, that a sign-in
   * replaced session `id` (session fixation: `Sessions.create`), before it
   * is deleted: a request that still carries its cookie, sent before the
   * browser had the new one, is then told from one whose session a logout
   * or an expiry ended (`replaced`). Holds nothing but the id.
   */
  noteReplaced(id: string, ttlMs: number): Promise<void>
  /** Whether `noteReplaced` noted session `id` within its time. */
  replaced(id: string): Promise<boolean>
  /**
   * Calls `listener` with the id of a session whose record may have changed
   * or ended, as soon as this process hears of it: the memory store when it
   * removes one, a shared store when Redis reports a change to one (its
   * local cache's invalidations: so only with that cache on, and never on a
   * Cluster). A hint to read the session again, never the verdict; what it
   * misses, a reader's own timer must still find. Returns what stops it.
   */
  onChange(listener: (id: string) => void): () => void
  /**
   * Ends a session the previous version wrote (its cookie carries no key):
   * removes the record iff it is in that version's format, and says what
   * is left to revoke; `undefined` when there is no such record. Only a
   * shared store can hold one; process memory does not outlive an upgrade.
   */
  endPreviousFormat?(id: string): Promise<EndedSession | undefined>
  /**
   * Ids of the live sessions of a user of provider `idp`, for "log out
   * everywhere" and back-channel logout: a `sub` is unique only within
   * its issuer (OIDC Core §2), so each provider has an index of its own.
   * With `issuedBy`, only those whose registration (`SessionData.registration`)
   * it accepts: a reload may have given the name another issuer, whose
   * users are others.
   */
  idsBySub(sub: string, idp?: string, issuedBy?: IssuedBy): Promise<string[]>
  /** Ids of the live sessions bound to an IdP session of provider `idp`, for back-channel logout; `issuedBy` as above. */
  idsBySid(sid: string, idp?: string, issuedBy?: IssuedBy): Promise<string[]>
  /**
   * Notes for `ttlMs` that a back-channel logout ended the IdP session
   * `sid` of `registration` (its issuer and client id), before it lists
   * that IdP session's sessions: a sign-in of it whose record was not yet
   * written then is found by `sidLoggedOut` once it is.
   */
  noteSidLoggedOut(registration: ClientRegistration, sid: string, ttlMs: number): Promise<void>
  /** Whether `noteSidLoggedOut` noted this IdP session within its time. */
  sidLoggedOut(registration: ClientRegistration, sid: string): Promise<boolean>
  /**
   * Notes for `ttlMs` that a back-channel logout naming only the user
   * `sub` of `registration` came, before it lists the user's sessions: a
   * sign-in of the user that started before then and whose record was not
   * yet written is found by `subLoggedOutAt` once it is. Noted again
   * within its time, the note keeps the latest of each time (`UserLoggedOut`).
   */
  noteSubLoggedOut(
    registration: ClientRegistration,
    sub: string,
    logout: Required<UserLoggedOut>,
    ttlMs: number,
  ): Promise<void>
  /** What `noteSubLoggedOut` noted of this user, within its time; `undefined`: not noted. */
  subLoggedOutAt(registration: ClientRegistration, sub: string): Promise<UserLoggedOut | undefined>
  /**
   * The live sessions of a user of provider `idp` (of every frontend: the
   * caller keeps its own), for the per-user bound; `issuedBy` as for
   * `idsBySub`. Read from the same index as `idsBySub`, each session on
   * its own key, so it sees every session whose record is written; it
   * removes no index entry, not even of a session it finds gone, whose
   * record may be one another sign-in has not written yet.
   */
  sessionsOfUser(sub: string, idp?: string, issuedBy?: IssuedBy): Promise<SessionOfUser[]>
  /** Rejects when the store cannot serve requests. */
  ping(): Promise<void>
  /**
   * What a reachable store refuses (an ACL without scripts or without the
   * gateway's keys, a Redis full under noeviction), for `/readyz`: checked anew, or as a check of the
   * last second found it; absent: nothing.
   */
  refusals?(): Promise<readonly StoreRefusalReport[]>
  /** What the store reports on `/metrics`; absent, it reports nothing. */
  report?(): StoreReport
  /** `stop`: the shutdown's drain has ended, and a store that does not answer is waited for no longer. */
  close(stop?: AbortSignal): Promise<void>
}

/**
 * When a back-channel logout naming only a user came, as a store keeps it:
 * of several within the note's time, the latest of each time, as the
 * latest logout is the one a sign-in must follow.
 */
export interface UserLoggedOut {
  /** When the logout came, epoch ms by the gateway's clock. */
  readonly at: number
  /**
   * When the IdP issued its logout token (`iat`), whole seconds by the
   * IdP's clock; absent from a note a release before this one wrote, or
   * merged with one, which then goes by `at` alone.
   */
  readonly iat?: number
}

/** Why a reachable store cannot serve every request, as `/readyz` says it. */
export interface StoreRefusalReport {
  /** For operators: what is refused, what it costs and what to do. */
  readonly detail: string
  /**
   * The store still serves reads, and every instance shares it (a full
   * Redis): report it and stay in rotation, since taking every instance
   * out would stop the sessions that still work.
   */
  readonly degraded: boolean
}

/** A store's own figures for `/metrics`; each part only where it applies. */
export interface StoreReport {
  /** Sessions held in this process, expired ones not yet noticed included (the memory store). */
  readonly heldSessions?: () => number
  /** The per-instance copy of a shared store, whenever one was asked for. */
  readonly localCache?: LocalCacheReport
}

export interface LocalCacheReport {
  /** True while the copy is in use; false when it is off (a Redis Cluster, or `CLIENT TRACKING` refused). */
  enabled(): boolean
  /** The copy itself; absent when it was never started. */
  readonly copy?: {
    readonly size: number
    /** Invalidations are heard, so entries may be served. */
    readonly armed: boolean
    readonly stats: { readonly hits: number; readonly misses: number }
  }
}
