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
import { randomBytes } from 'node:crypto'
import { MemorySessionStore } from '../src/session/memory-store.js'
import type { SessionData, TokenSet } from '../src/session/types.js'
import { type ClaimsShape, claimsOf } from './claims.js'

const count = Number(process.argv[2] ?? 100_000)
const shape = (process.argv[3] ?? 'id-token') as ClaimsShape
const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run with --expose-gc')

const tokens: TokenSet = {
  accessToken: 'a'.repeat(900),
  accessTokenExpiresAt: Date.now() + 60_000,
  refreshToken: 'r'.repeat(43),
  idToken: 'i'.repeat(1_100),
}

function session(i: number, now: number): SessionData {
  const sub = `user-${i}-${randomBytes(6).toString('hex')}`
  return {
    id: randomBytes(32).toString('base64url'),
    sub,
    sid: randomBytes(16).toString('base64url'),
    claims: claimsOf(shape, sub, i),
    tokens: { ...tokens, accessTokenExpiresAt: now + 60_000 },
    version: 0,
    createdAt: now,
    absoluteExpiresAt: now + 12 * 3_600_000,
    idleExpiresAt: now + 30 * 60_000,
    logoutHandle: randomBytes(16).toString('base64url'),
  }
}

function heap(): number {
  gc!()
  gc!()
  return process.memoryUsage().heapUsed
}

const now = Date.now()
const store = new MemorySessionStore({ idleTimeoutMs: 30 * 60_000, maxSessions: count })
const before = heap()
for (let i = 0; i < count; i++) await store.create(session(i, now))
const after = heap()
const bytesPerSession = (after - before) / count

// Bounded: half as many again past the cap leaves the store at the cap.
for (let i = count; i < count * 1.5; i++) await store.create(session(i, now))
const sizeAfterOverflow = store.size

process.stdout.write(
  `${JSON.stringify({ sessions: count, claims: shape, bytesPerSession: Math.round(bytesPerSession), cap: count, sizeAfterOverflow })}\n`,
)
