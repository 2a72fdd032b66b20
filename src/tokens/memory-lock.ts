import { RefreshWaitTimeoutError } from '../errors.js'
import type { HeldLock, LockService } from './types.js'

/**
 * Locks for a single process. Single-flight already coalesces callers per
 * key, so these rarely contend; they exist so the memory and Redis
 * deployments run the same refresh code.
 */
export class MemoryLockService implements LockService {
  readonly #held = new Map<string, { released: Promise<void>; release: () => void; timer: NodeJS.Timeout }>()

  async tryAcquire(key: string, ttlMs: number): Promise<HeldLock | null> {
    if (this.#held.has(key)) return null
    let release!: () => void
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    // No renewal needed in one process, but a lock must still never
    // outlive a holder that forgot it.
    const timer = setTimeout(() => this.#release(key, entry), ttlMs * 10)
    timer.unref()
    const entry = { released, release, timer }
    this.#held.set(key, entry)
    return { release: async () => this.#release(key, entry) }
  }

  async waitForRelease(key: string, timeoutMs: number): Promise<void> {
    const entry = this.#held.get(key)
    if (!entry) return
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RefreshWaitTimeoutError(key, timeoutMs)), timeoutMs)
    })
    try {
      await Promise.race([entry.released, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  async close(): Promise<void> {
    for (const [key, entry] of this.#held) this.#release(key, entry)
  }

  #release(key: string, entry: { release: () => void; timer: NodeJS.Timeout }): void {
    if (this.#held.get(key) !== entry) return
    this.#held.delete(key)
    clearTimeout(entry.timer)
    entry.release()
  }
}
