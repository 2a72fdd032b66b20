/**
 * Heap cost of sessions in the memory store, run in a process of its own
 * with `--expose-gc` so nothing else shares the heap:
 *
 *   node --expose-gc --import tsx bench/memory.ts [count] [id-token|userinfo]
 *
 * Prints one JSON line. Every session carries the same token strings, so
 * the figure excludes the tokens themselves, as the target asks; ids,
 * handles, claims and the record are each session's own.
 */
import { MemorySessionStore } from '../src/session/memory-store.js'
import { benchSession, type ClaimsShape, settledHeap } from './session-fixture.js'

const count = Number(process.argv[2] ?? 100_000)
const shape = (process.argv[3] ?? 'id-token') as ClaimsShape

const now = Date.now()
const store = new MemorySessionStore({ idleTimeoutMs: 30 * 60_000, maxSessions: count })
const before = settledHeap()
for (let i = 0; i < count; i++) await store.create(benchSession(i, now, shape))
const after = settledHeap()
const bytesPerSession = (after - before) / count

// Bounded: half as many again past the cap leaves the store at the cap.
for (let i = count; i < count * 1.5; i++) await store.create(benchSession(i, now, shape))
const sizeAfterOverflow = store.size

process.stdout.write(
  `${JSON.stringify({ sessions: count, claims: shape, bytesPerSession: Math.round(bytesPerSession), cap: count, sizeAfterOverflow })}\n`,
)
