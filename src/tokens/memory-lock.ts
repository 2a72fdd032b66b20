import { RefreshWaitTimeoutError } from '../errors.js'
import type { HeldLock, LockService, Release } from './types.js'

/**
 * Locks for a single process. Single-flight already coalesces callers per
 * key, so these rarely contend; they exist so the memory and Redis
 * deployments run the same refresh code.
 */
export class MemoryLockService implements LockService {
  readonly #held = new Map<string, Entry>()

  async tryAcquire(key: string, ttlMs: number): Promise<HeldLock | null> {
    if (this.#held.has(key)) return null
    let release!: (how: Release) => void
    const released = new Promise<Release>((resolve) => {
      release = resolve
    })
    // No renewal needed in one process, but a lock must still never
    // outlive a holder that forgot it.
    const timer = setTimeout(() => this.#release(key, entry, 'released'), ttlMs * 10)
    timer.unref()
    const entry = { released, release, timer }
    this.#held.set(key, entry)
    return { release: async (how = 'released') => this.#release(key, entry, how) }
  }

  async waitForRelease(key: string, timeoutMs: number): Promise<Release> {
    const entry = this.#held.get(key)
    if (!entry) return 'free'
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RefreshWaitTimeoutError(key, timeoutMs)), timeoutMs)
    })
    try {
      return await Promise.race([entry.released, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  async close(): Promise<void> {
    for (const [key, entry] of this.#held) this.#release(key, entry, 'released')
  }

  #release(key: string, entry: Entry, how: Release): void {
    if (this.#held.get(key) !== entry) return
    this.#held.delete(key)
    clearTimeout(entry.timer)
    entry.release(how)
  }
}

interface Entry {
  readonly released: Promise<Release>
  readonly release: (how: Release) => void
  readonly timer: NodeJS.Timeout
}
