/**
 * Heap cost of sessions in the memory store, run in a process of its own
 * with `--expose-gc` so nothing else shares the heap:
 *
 *   node --expose-gc --import tsx bench/memory.ts [count]
 *
 * Prints one JSON line. Every session carries the same token strings, so
 * the figure excludes the tokens themselves, as the target asks; ids,
 * handles, claims and the record are each session's own.
 */
import { MemorySessionStore } from '../src/session/memory-store.js'
import type { SessionData, TokenSet } from '../src/session/types.js'
import { sessionRecord, settledHeap } from './session-record.js'

const count = Number(process.argv[2] ?? 100_000)

const tokens: TokenSet = {
  accessToken: 'a'.repeat(900),
  accessTokenExpiresAt: Date.now() + 60_000,
  refreshToken: 'r'.repeat(43),
  idToken: 'i'.repeat(1_100),
}

function session(i: number, now: number): SessionData {
  return sessionRecord(i, now, { ...tokens, accessTokenExpiresAt: now + 60_000 })
}

const now = Date.now()
const store = new MemorySessionStore({ idleTimeoutMs: 30 * 60_000, maxSessions: count })
const before = settledHeap()
for (let i = 0; i < count; i++) await store.create(session(i, now))
const after = settledHeap()
const bytesPerSession = (after - before) / count

// Bounded: half as many again past the cap leaves the store at the cap.
for (let i = count; i < count * 1.5; i++) await store.create(session(i, now))
const sizeAfterOverflow = store.size

process.stdout.write(
  `${JSON.stringify({ sessions: count, bytesPerSession: Math.round(bytesPerSession), cap: count, sizeAfterOverflow })}\n`,
)
