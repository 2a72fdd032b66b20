import { BoundedMap } from '../bounded-map.js'
import { SHORTHAND_PROVIDER } from '../config/schema.js'
import { gatehouseError } from '../errors.js'
import type { ClientRegistration, TokenSet } from '../types.js'
import { ChangeHints } from './change-hints.js'
import { latestLogout, loggedOutName } from './logged-out-name.js'
import type {
  HeldGrant,
  IssuedBy,
  ReadOptions,
  SessionData,
  SessionOfUser,
  SessionRef,
  SessionStore,
  StoreReport,
  TakenSession,
  UpdateResult,
  UserLoggedOut,
} from './types.js'

/** Options of `MemorySessionStore`. */
export interface MemorySessionStoreOptions {
  /** Sliding idle timeout, ms. */
  readonly idleTimeoutMs: number
  /** Upper bound on live sessions; the least recently used is evicted past it. */
  readonly maxSessions?: number
  /** Slide the idle expiry only when this much of it has elapsed, ms. Default: a tenth of it. */
  readonly touchEveryMs?: number
  /** Clock for operations that take no `now` (create, updateTokens, idsBySub, idsBySid). Default `Date.now`. */
  readonly clock?: () => number
  /** Hears of each session still live that was evicted to make room past `maxSessions`: a user signed out. */
  readonly onEvicted?: () => void
}

/** Expired records at the head of the Map that one `create` removes, at most. */
const RECLAIM_PER_CREATE = 4

/**
 * One process's sessions: a Map kept in LRU order, bounded in size, and
 * expired lazily on read and a few at a time on create, so there is no
 * timer per session and no sweep.
 * Records are replaced, never mutated, so a caller holding a snapshot is
 * never surprised by a later write.
 *
 * Nothing is sealed: the records never leave this process, and a reader of
 * its memory would see each key as its request arrives. The key is still
 * required: a record is handed only to a request whose cookie carries the
 * key it was created with, as the shared store does.
 */
export class MemorySessionStore implements SessionStore {
  readonly kind = 'memory' as const
  readonly #sessions: BoundedMap<string, SessionData>
  readonly #bySub = new Map<string, Set<string>>()
  readonly #bySid = new Map<string, Set<string>>()
  /** IdP sessions a back-channel logout ended, to when; bounded as the sessions are. */
  readonly #loggedOut: BoundedMap<string, number>
  /** Sessions a sign-in replaced, to when; bounded as the sessions are. */
  readonly #replaced: BoundedMap<string, number>
  /** Users a back-channel logout naming only their `sub` ended, when, and to when that is kept. */
  readonly #usersLoggedOut: BoundedMap<string, { readonly logout: UserLoggedOut; readonly until: number }>
  readonly #idle: number
  readonly #touchEvery: number
  readonly #now: () => number
  readonly #hints = new ChangeHints()

  constructor(options: MemorySessionStoreOptions) {
    this.#idle = options.idleTimeoutMs
    this.#touchEvery = options.touchEveryMs ?? Math.floor(options.idleTimeoutMs / 10)
    this.#now = options.clock ?? Date.now
    const onEvicted = options.onEvicted
    this.#sessions = new BoundedMap(options.maxSessions ?? 100_000, (_, evicted) => {
      this.#unindex(evicted)
      this.#hints.heard(evicted.id)
      // An expired record not yet noticed ends no one's session.
      if (onEvicted && !isExpired(evicted, this.#now())) onEvicted()
    })
    this.#loggedOut = new BoundedMap(options.maxSessions ?? 100_000)
    this.#replaced = new BoundedMap(options.maxSessions ?? 100_000)
    this.#usersLoggedOut = new BoundedMap(options.maxSessions ?? 100_000)
  }

  /** Sessions held, including expired ones not yet noticed; for metrics. */
  get size(): number {
    return this.#sessions.size
  }

  async create(session: SessionData): Promise<void> {
    // A reused id must not leave the old record's index entries behind.
    this.#remove(session.id)
    this.#reclaim(this.#now())
    this.#sessions.set(session.id, session)
    index(this.#bySub, indexName(session.idp, session.sub), session.id)
    if (session.sid) index(this.#bySid, indexName(session.idp, session.sid), session.id)
  }

  async get(ref: SessionRef, now: number, options?: ReadOptions): Promise<SessionData | undefined> {
    // A look that is not activity leaves the record, and its place in the
    // LRU order, as they are.
    if (options?.touch === false) return this.#opened(ref, now)
    return this.peek(ref, now)
  }

  /** Everything is in this process: `get`'s answer, at once. */
  peek(ref: SessionRef, now: number): SessionData | undefined {
    const { id } = ref
    const session = this.#opened(ref, now)
    if (!session) return session
    const lastTouch = session.idleExpiresAt - this.#idle
    if (now - lastTouch < this.#touchEvery) {
      this.#sessions.set(id, session)
      return session
    }
    const touched = { ...session, idleExpiresAt: Math.min(now + this.#idle, session.absoluteExpiresAt) }
    this.#sessions.set(id, touched)
    return touched
  }

  async updateTokens(ref: SessionRef, expectedVersion: number, tokens: TokenSet): Promise<UpdateResult> {
    const session = this.#opened(ref, this.#now())
    if (!session) return 'missing'
    if (session.version !== expectedVersion) return 'stale'
    this.#sessions.replace(ref.id, { ...session, tokens, version: expectedVersion + 1 })
    return 'updated'
  }

  async delete(id: string): Promise<boolean> {
    return this.#remove(id) !== undefined
  }

  async take(id: string): Promise<TakenSession | undefined> {
    const session = this.#remove(id)
    if (session === undefined) return undefined
    const grant = grantOf(session)
    return grant === undefined ? {} : { grant }
  }

  onChange(listener: (id: string) => void): () => void {
    return this.#hints.add(listener)
  }

  async noteReplaced(id: string, ttlMs: number): Promise<void> {
    this.#replaced.set(id, this.#now() + ttlMs)
  }

  async replaced(id: string): Promise<boolean> {
    const until = this.#replaced.get(id)
    if (until === undefined) return false
    if (until > this.#now()) return true
    this.#replaced.delete(id)
    return false
  }

  async noteSidLoggedOut(registration: ClientRegistration, sid: string, ttlMs: number): Promise<void> {
    this.#loggedOut.set(loggedOutName(registration, sid), this.#now() + ttlMs)
  }

  async sidLoggedOut(registration: ClientRegistration, sid: string): Promise<boolean> {
    return (this.#loggedOut.get(loggedOutName(registration, sid)) ?? 0) > this.#now()
  }

  async noteSubLoggedOut(
    registration: ClientRegistration,
    sub: string,
    logout: Required<UserLoggedOut>,
    ttlMs: number,
  ): Promise<void> {
    const name = loggedOutName(registration, sub)
    // The latest logout of the user is the one a sign-in must follow.
    const noted = this.#usersLoggedOut.get(name)
    const latest = noted && noted.until > this.#now() ? latestLogout(noted.logout, logout) : logout
    this.#usersLoggedOut.set(name, { logout: latest, until: this.#now() + ttlMs })
  }

  async subLoggedOutAt(registration: ClientRegistration, sub: string): Promise<UserLoggedOut | undefined> {
    const noted = this.#usersLoggedOut.get(loggedOutName(registration, sub))
    return noted && noted.until > this.#now() ? noted.logout : undefined
  }

  async idsBySub(sub: string, idp: string = SHORTHAND_PROVIDER, issuedBy?: IssuedBy): Promise<string[]> {
    return this.#liveIds(this.#bySub.get(indexName(idp, sub)), issuedBy)
  }

  async idsBySid(sid: string, idp: string = SHORTHAND_PROVIDER, issuedBy?: IssuedBy): Promise<string[]> {
    return this.#liveIds(this.#bySid.get(indexName(idp, sid)), issuedBy)
  }

  async sessionsOfUser(
    sub: string,
    idp: string = SHORTHAND_PROVIDER,
    issuedBy?: IssuedBy,
  ): Promise<SessionOfUser[]> {
    const ids = this.#liveIds(this.#bySub.get(indexName(idp, sub)), issuedBy)
    return ids.map((id) => {
      const session = this.#sessions.get(id)!
      const { refreshTokenExpiresAt } = session.tokens
      const grant = grantOf(session)
      return {
        id,
        createdAt: session.createdAt,
        ...(refreshTokenExpiresAt === undefined ? {} : { refreshTokenExpiresAt }),
        ...(grant === undefined ? {} : { grant }),
      }
    })
  }

  async ping(): Promise<void> {}

  report(): StoreReport {
    return { heldSessions: () => this.#sessions.size }
  }

  async close(): Promise<void> {
    this.#sessions.clear()
    this.#replaced.clear()
    this.#bySub.clear()
    this.#bySid.clear()
  }

  /** The live record, iff `ref.key` is the key it was created with. */
  #opened(ref: SessionRef, now: number): SessionData | undefined {
    const session = this.#live(ref.id, now)
    if (session && !session.key.equals(ref.key))
      throw gatehouseError('GATEHOUSE_ERR_SESSION_UNREADABLE', undefined, 'refused')
    return session
  }

  #live(id: string, now: number): SessionData | undefined {
    const session = this.#sessions.get(id)
    if (!session) return undefined
    if (isExpired(session, now)) {
      this.#remove(id)
      return undefined
    }
    return session
  }

  #reclaim(now: number): void {
    // The head is the least recently used, so the first past its idle expiry; a few
    // looks per create free sessions never read again at O(1) each. Absolute expiry
    // is not in LRU order, so this is best effort: maxSessions is the hard bound.
    for (let i = 0; i < RECLAIM_PER_CREATE; i++) {
      const head = this.#sessions.oldest()
      if (!head || !isExpired(head, now)) return
      this.#remove(head.id)
    }
  }

  #liveIds(ids: Set<string> | undefined, issuedBy: IssuedBy | undefined): string[] {
    if (!ids) return []
    const now = this.#now()
    return [...ids].filter((id) => {
      const session = this.#live(id, now)
      return session !== undefined && (issuedBy?.(session.registration) ?? true)
    })
  }

  /** The session removed, if there was one. */
  #remove(id: string): SessionData | undefined {
    const session = this.#sessions.get(id)
    if (!session) return undefined
    this.#sessions.delete(id)
    this.#unindex(session)
    this.#hints.heard(id)
    return session
  }

  #unindex(session: SessionData): void {
    unindex(this.#bySub, indexName(session.idp, session.sub), session.id)
    if (session.sid) unindex(this.#bySid, indexName(session.idp, session.sid), session.id)
  }
}

/** The grant a session's refresh token continues; none without one. */
function grantOf(session: SessionData): HeldGrant | undefined {
  const { refreshToken } = session.tokens
  if (refreshToken === undefined) return undefined
  const { idp, registration, sub, sid } = session
  return { idp, registration, sub, sid, refreshToken }
}

/** A `sub` or `sid` is unique only within its issuer (OIDC Core §2): each provider indexes its own. */
function indexName(idp: string, value: string): string {
  return `${idp}\n${value}`
}

function isExpired(session: SessionData, now: number): boolean {
  return now >= session.idleExpiresAt || now >= session.absoluteExpiresAt
}

function index(map: Map<string, Set<string>>, key: string, id: string): void {
  const ids = map.get(key)
  if (ids) ids.add(id)
  else map.set(key, new Set([id]))
}

function unindex(map: Map<string, Set<string>>, key: string, id: string): void {
  const ids = map.get(key)
  if (!ids) return
  ids.delete(id)
  if (ids.size === 0) map.delete(key)
}
