/**
 * The Redis session store's notes beside the sessions, each a short-lived
 * string on a key of its own: that a sign-in replaced a session
 * (`{prefix}replaced:{<id>}`), that a back-channel logout ended an IdP
 * session (`{prefix}logged-out:sid:<hash>`), and when one naming only a
 * user came (`{prefix}logged-out:sub:<hash>`).
 */
import type { IndexHashes } from '../crypto/derived-keys.js'
import { guarded } from '../redis/connection.js'
import type { RedisKeys } from '../redis/keys.js'
import type { ClientRegistration } from '../types.js'
import { latestLogout, loggedOutName } from './logged-out-name.js'
import type { StoreConnections } from './redis-store-connections.js'
import type { UserLoggedOut } from './types.js'

/** The notes of a `RedisSessionStore`, named under its keys and its secrets' hashes. */
export class SessionNotes {
  readonly #conn: StoreConnections
  readonly #keys: RedisKeys
  readonly #hashes: () => IndexHashes

  constructor(connections: StoreConnections, keys: RedisKeys, hashes: () => IndexHashes) {
    this.#conn = connections
    this.#keys = keys
    this.#hashes = hashes
  }

  async noteReplaced(id: string, ttlMs: number): Promise<void> {
    const key = this.#keys.replaced(id)
    const ttl = Math.max(1, Math.floor(ttlMs))
    // Confirmed on a replica as the delete that follows is: a marker lost
    // in a failover that the delete survived would have the replaced
    // session's requests clear the browser's new cookie.
    await this.#conn.noticing(() => this.#conn.writeMarker(key, ttl))
  }

  async replaced(id: string): Promise<boolean> {
    return (await guarded(() => this.#conn.redis.exists(this.#keys.replaced(id)))) > 0
  }

  async noteSidLoggedOut(registration: ClientRegistration, sid: string, ttlMs: number): Promise<void> {
    const key = this.#keys.loggedOutSid(this.#hashes().current('sid', loggedOutName(registration, sid)))
    const ttl = Math.max(1, Math.floor(ttlMs))
    // Confirmed on a replica as the indexes are: a note lost in a failover
    // is a sign-in that outlives its IdP session's logout.
    await guarded(() => this.#conn.writeMarker(key, ttl))
  }

  async sidLoggedOut(registration: ClientRegistration, sid: string): Promise<boolean> {
    // Under every secret's hash, as the indexes are found; one key per
    // call, as each may live on another node of a Cluster.
    const names = this.#hashes().all('sid', loggedOutName(registration, sid))
    const found = await guarded(() =>
      Promise.all(names.map((name) => this.#conn.redis.exists(this.#keys.loggedOutSid(name)))),
    )
    return found.some((n) => n > 0)
  }

  async noteSubLoggedOut(
    registration: ClientRegistration,
    sub: string,
    logout: Required<UserLoggedOut>,
    ttlMs: number,
  ): Promise<void> {
    const key = this.#keys.loggedOutSub(this.#hashes().current('sub', loggedOutName(registration, sub)))
    const args = [Math.floor(logout.at), Math.floor(logout.iat), Math.max(1, Math.floor(ttlMs))] as const
    // Confirmed on a replica as the indexes are. Two logouts of the user
    // within the note's time leave the latest of each time (the script): a
    // sign-in started between them ends all the same, as the later
    // logout's listing would have ended it.
    await guarded(() => this.#conn.write('ghNoteSubLoggedOut', key, ...args))
  }

  async subLoggedOutAt(registration: ClientRegistration, sub: string): Promise<UserLoggedOut | undefined> {
    // Under every secret's hash, one key per call (a Cluster may hold each on another node).
    const names = this.#hashes().all('sub', loggedOutName(registration, sub))
    const found = await guarded(() =>
      Promise.all(names.map((name) => this.#conn.redis.get(this.#keys.loggedOutSub(name)))),
    )
    const notes = found.flatMap((note): UserLoggedOut[] => {
      // `<at>` from a release before `iat` was noted, else `<at>.<iat>` (NOTE_SUB_LOGGED_OUT).
      const [, at, iat] = /^(\d{1,16})(?:\.(\d{1,16}))?$/.exec(note ?? '') ?? []
      if (at === undefined || Number(at) <= 0) return []
      return [iat === undefined ? { at: Number(at) } : { at: Number(at), iat: Number(iat) }]
    })
    return notes.length > 0 ? notes.reduce(latestLogout) : undefined
  }
}
