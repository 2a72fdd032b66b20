/** Which limit refused an upgrade, as the metric labels it. */
export type SocketLimit = 'session_limit' | 'instance_limit'

/** A socket's place under the limits, held from the upgrade until its TCP connection closes. */
export interface SocketPlace {
  /** Gives the place back; once, however often it is called. */
  release(): void
}

/**
 * The WebSockets of one instance, over every route, counted against
 * `server.maxWebSockets` and, per session, `session.maxWebSockets`. A
 * place is taken before the upstream is dialled, so upgrades still in
 * their handshake count too: a burst of them cannot slip past the limit.
 * Sessions are counted per instance: a count in the shared store would cost
 * a write per upgrade and leak when an instance dies.
 */
export class SocketLimits {
  #perInstance: number
  #perSession: number
  readonly #bySession = new Map<string, number>()
  #open = 0

  constructor(perInstance: number, perSession: number) {
    this.#perInstance = perInstance
    this.#perSession = perSession
  }

  /**
   * New limits, for upgrades from now on (a config reload). Sockets already
   * open keep their places, and count against the new limits.
   */
  resize(perInstance: number, perSession: number): void {
    this.#perInstance = perInstance
    this.#perSession = perSession
  }

  /** Sockets holding a place, on every route. */
  get open(): number {
    return this.#open
  }

  /** A place for one more socket of `session` (none for an anonymous one), or the limit that refuses it. */
  take(session: string | undefined): SocketPlace | SocketLimit {
    const held = session === undefined ? 0 : (this.#bySession.get(session) ?? 0)
    // The session's own limit first: its answer (429) does not change with
    // the instance's load, and tells the SPA what to fix.
    if (held >= this.#perSession) return 'session_limit'
    if (this.#open >= this.#perInstance) return 'instance_limit'
    this.#open++
    if (session !== undefined) this.#bySession.set(session, held + 1)
    let released = false
    return {
      release: () => {
        if (released) return
        released = true
        this.#open--
        if (session === undefined) return
        const left = (this.#bySession.get(session) ?? 1) - 1
        if (left === 0) this.#bySession.delete(session)
        else this.#bySession.set(session, left)
      },
    }
  }
}
