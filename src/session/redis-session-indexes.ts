/**
 * The indexes of the Redis session store: the sessions of a user
 * (`{prefix}sub:{<hash>}`) and of an IdP session (`{prefix}sid:{<hash>}`),
 * per provider, each a sorted set scored by absolute expiry on a key (a
 * Cluster slot) of its own. A session is entered before its record is
 * written and left after its record is deleted, so a crash in between
 * leaves a member without a session, which a lookup prunes, never a
 * session a logout by `sub` or `sid` cannot find.
 */
import { SHORTHAND_PROVIDER } from '../config/schema.js'
import type { IndexedClaim, IndexHashes } from '../crypto/derived-keys.js'
import { guarded } from '../redis/connection.js'
import type { RedisKeys } from '../redis/keys.js'
import {
  type IndexNames,
  type PreviousData,
  parsed,
  refreshExpiryOf,
  registrationIn,
} from './redis-session-record.js'
import type { StoreConnections } from './redis-store-connections.js'
import type { IssuedBy, SessionData, SessionOfUser } from './types.js'

/** What the indexes need of the store that keeps them. */
export interface SessionIndexesOptions {
  readonly connections: StoreConnections
  readonly keys: RedisKeys
  /** The keyed hashes the indexes are named by, as `session.secrets` now are. */
  readonly hashes: () => IndexHashes
  readonly now: () => number
}

/** How many of the oldest index members, and as many at a random rank, each sign-in checks for a gone session. */
const RECLAIM_PER_CREATE = 4

/**
 * How long an index member is left alone by the reclaim: its sign-in has
 * written the index but maybe not yet the record (a command timeout, a
 * replica's confirmation), and must not lose its member meanwhile.
 */
const SETTLE_MS = 5 * 60_000 // 5 min

/** A live member of an index, with its record's `c` field (null: written before there was one). */
interface LiveMember {
  readonly id: string
  readonly created: string | null
  /** When its refresh token expires, where the record says so for its current tokens. */
  readonly refreshTokenExpiresAt?: number
}

/** A session entered in its indexes by `enter`, whose record is being written. */
export interface Entered {
  readonly id: string
  readonly absoluteExpiresAt: number
  readonly indexes: readonly string[]
  /** Members `INDEX_ADD` offered as maybe gone, per index. */
  readonly offered: readonly string[][]
  readonly now: number
}

/** The sub and sid indexes of a `RedisSessionStore`. */
export class SessionIndexes {
  readonly #conn: StoreConnections
  readonly #keys: RedisKeys
  readonly #hashes: () => IndexHashes
  readonly #now: () => number

  constructor(options: SessionIndexesOptions) {
    this.#conn = options.connections
    this.#keys = options.keys
    this.#hashes = options.hashes
    this.#now = options.now
  }

  /** The record's `ix` field for a new session: its indexes are named under the first secret's hashes. */
  namesOf(session: SessionData): IndexNames {
    const hashes = this.#hashes()
    return {
      ...(session.idp === SHORTHAND_PROVIDER ? {} : { idp: session.idp }),
      sub: hashes.current('sub', session.sub),
      ...(session.sid ? { sid: hashes.current('sid', session.sid) } : {}),
      ...(session.registration ? { registration: session.registration } : {}),
    }
  }

  /** Enters a new session in the indexes its `ix` names, before its record is written. */
  async enter(session: SessionData, ix: IndexNames, now: number): Promise<Entered> {
    const indexes = this.#keysOf(ix)
    // Members indexed more than SETTLE_MS before this one have had time to
    // write their record: only those may be reclaimed as gone.
    const settled = session.absoluteExpiresAt - SETTLE_MS
    // Each entry confirmed on a replica of its own index's master: on a
    // Cluster that is seldom the record's, and the record's WAIT covers
    // only writes to its node. An entry lost in a failover is a session
    // that a back-channel logout by sub or sid cannot find.
    const offered = await this.#conn.noticing(() =>
      Promise.all(
        indexes.map((index) =>
          this.#conn.write(
            'ghIndexAdd',
            index,
            session.id,
            session.absoluteExpiresAt,
            now,
            settled,
            Math.random(),
            RECLAIM_PER_CREATE,
          ),
        ),
      ),
    )
    return { id: session.id, absoluteExpiresAt: session.absoluteExpiresAt, indexes, offered, now }
  }

  /** Once the entered session's record is written: its members again, and the reclaim of gone ones. */
  async settle({ id, absoluteExpiresAt, indexes, offered, now }: Entered): Promise<void> {
    // SETTLE_MS reads a member's age off its score, the absolute expiry,
    // which an instance still on a shorter session.absoluteTimeout (a
    // reload not yet applied there) or with its clock behind writes low:
    // another sign-in's reclaim may have taken this member before the
    // record existed. Now that it does, the member goes back.
    await Promise.all([
      guarded(() =>
        Promise.all(
          indexes.map((index) => this.#conn.writer.ghIndexAdd(index, id, absoluteExpiresAt, now, 0, 0, 0)),
        ),
      ),
      this.#reclaim(indexes, offered, now),
    ])
  }

  /**
   * Takes out of each index the members offered by `INDEX_ADD` whose
   * session is gone. A session that lapses at its idle timeout keeps its
   * member until its absolute expiry, and nothing else prunes an index
   * but a lookup, which costs one read per member: a user signing in over
   * and over without logging out grew one member per sign-in. Checking a
   * few per sign-in removes stale members faster than sign-ins add them.
   * Best effort, after the session is written: the sign-in has succeeded
   * whatever happens here, and a lookup still prunes.
   */
  async #reclaim(indexes: readonly string[], offered: readonly string[][], now: number): Promise<void> {
    const candidates = [...new Set(offered.flat())]
    if (candidates.length === 0) return
    try {
      const present = await guarded(() =>
        Promise.all(candidates.map((id) => this.#conn.redis.exists(this.#keys.session(id)))),
      )
      const gone = candidates.filter((_, i) => present[i] === 0)
      if (gone.length === 0) return
      await guarded(() => Promise.all(indexes.map((index) => this.#conn.writer.zrem(index, ...gone))))
      await this.#indexAgain(gone, now)
    } catch {
      // Left to the next sign-in's reclaim or to a lookup's pruning.
    }
  }

  /**
   * Puts back, in the indexes its record names, each of `removed` whose
   * record exists after all: removed as gone on a check that ran before
   * its sign-in wrote the record (indexes go first), while the sign-in put
   * its member back before the removal landed. Without this the session
   * lived on where no lookup by `sub` or `sid` could find it.
   */
  async #indexAgain(removed: readonly string[], now: number): Promise<void> {
    const rows = await guarded(() =>
      Promise.all(removed.map((id) => this.#conn.redis.hmget(this.#keys.session(id), 'abs', 'ix'))),
    )
    await guarded(() =>
      Promise.all(
        rows.flatMap(([abs, ix], i) =>
          abs && ix
            ? this.#keysOf(parsed<IndexNames>(ix)).map((index) =>
                this.#conn.writer.ghIndexAdd(index, removed[i]!, Number(abs), now, 0, 0, 0),
              )
            : [],
        ),
      ),
    )
  }

  /**
   * The session is gone; its index entries are on other keys (other
   * slots), so they go in steps of their own. A failure here leaves
   * members that listing prunes.
   */
  async leave(id: string, indexes: string[]): Promise<void> {
    await guarded(() => Promise.all(indexes.map((index) => this.#conn.writer.zrem(index, id))))
  }

  /** The index keys a deleted record named: in its `ix` field, or, of the previous version, its `data`. */
  keysNamedBy(ix: string | null, data: string | null): string[] {
    return ix !== null ? this.#keysOf(parsed<IndexNames>(ix)) : this.previousKeysOf(data)
  }

  /** The keys of the indexes an `ix` field names. */
  #keysOf(ix: IndexNames): string[] {
    const idp = typeof ix.idp === 'string' ? ix.idp : undefined
    return (['sub', 'sid'] as const).flatMap((claim) => {
      const name = ix[claim]
      return typeof name === 'string' ? [this.#keys.index(claim, name, idp)] : []
    })
  }

  /** The previous version's index keys, named by the plain sub and sid in its `data`. */
  previousKeysOf(data: string | null): string[] {
    if (data === null) return []
    const { sub, sid } = parsed<PreviousData>(data)
    return this.#keysOf({
      ...(typeof sub === 'string' ? { sub } : {}),
      ...(typeof sid === 'string' ? { sid } : {}),
    })
  }

  async ids(
    claim: IndexedClaim,
    value: string,
    idp: string,
    issuedBy: IssuedBy | undefined,
  ): Promise<string[]> {
    return (await this.#membersBy(claim, value, idp, issuedBy)).map((member) => member.id)
  }

  /**
   * A user's sessions with when each began, from the same indexes as
   * `idsBySub`: each index on its own key and each record on its own, so
   * on a Cluster, where they are on several masters, no step spans two.
   */
  async sessionsOfUser(sub: string, idp: string, issuedBy: IssuedBy | undefined): Promise<SessionOfUser[]> {
    // Read only: a removal would race the sign-ins this bound is weighed
    // against, whose records are not all written yet (`#indexAgain`
    // closes that race, but leaves a moment without the entry).
    const members = await this.#membersBy('sub', sub, idp, issuedBy, false)
    // A record written before `c` was: older than any written since.
    return members.map(({ id, created, refreshTokenExpiresAt }) => ({
      id,
      createdAt: created === null ? 0 : Number(created),
      ...(refreshTokenExpiresAt === undefined ? {} : { refreshTokenExpiresAt }),
    }))
  }

  /**
   * Sessions indexed under any secret's hash of the value, so a rotation
   * loses none; `prune`: take out the members whose session is gone.
   */
  async #membersBy(
    claim: IndexedClaim,
    value: string,
    idp: string,
    issuedBy: IssuedBy | undefined,
    prune = true,
  ): Promise<LiveMember[]> {
    const names = this.#hashes().all(claim, value)
    const lists = await Promise.all(
      names.map((name) => this.#liveMembers(this.#keys.index(claim, name, idp), issuedBy, prune)),
    )
    const byId = new Map(lists.flat().map((member) => [member.id, member]))
    return [...byId.values()]
  }

  /**
   * Members of an index whose session is alive (and, with `issuedBy`, of
   * the registration it wants): listed from the index, then each session
   * asked on its own key, then the vanished ones removed. Ids are never
   * reused, so removing one whose session is gone is safe once its record
   * is asked again (`#indexAgain`): a record may be missing only because
   * its sign-in has not written it yet.
   */
  async #liveMembers(index: string, issuedBy: IssuedBy | undefined, prune: boolean): Promise<LiveMember[]> {
    const now = this.#now()
    const redis = this.#conn.redis
    return guarded(async () => {
      const ids = await redis.ghIndexMembers(index, now)
      const rows = await Promise.all(
        ids.map((id) => redis.hmget(this.#keys.session(id), 'idle', 'ix', 'c', 'abs', 'v', 'rx')),
      )
      const gone = ids.filter((_, i) => rows[i]![0] === null)
      if (prune && gone.length > 0) {
        await redis.zrem(index, ...gone)
        await this.#indexAgain(gone, now)
      }
      return ids.flatMap((id, i) => {
        const [idle, ix, created, abs, version, rx] = rows[i]!
        // Past either expiry, as `get` finds it (the previous version's records have no `abs`).
        if (typeof idle !== 'string' || Number(idle) <= now) return []
        if (typeof abs === 'string' && Number(abs) <= now) return []
        if (issuedBy !== undefined && !issuedBy(typeof ix === 'string' ? registrationIn(ix) : undefined))
          return []
        const expiry = refreshExpiryOf(rx ?? null, version ?? null)
        return [
          {
            id,
            created: created ?? null,
            ...(expiry === undefined ? {} : { refreshTokenExpiresAt: expiry }),
          },
        ]
      })
    })
  }
}
