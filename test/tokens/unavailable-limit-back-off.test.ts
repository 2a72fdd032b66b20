/**
 * UnavailableLimit on its own: how long a failing session waits before its
 * next IdP call (the Retry-After of what it answered: the IdP's own,
 * bounded, or the catalogue's), what a request kept from the IdP meanwhile
 * is told, and that only a refresh's failure counts towards the limit.
 */
import t from 'tap'
import {
  type ErrorCode,
  gatehouseError,
  retryAfterFor,
  retryAfterOf,
  withRetryAfter,
} from '../../src/errors.js'
import { UnavailableLimit } from '../../src/tokens/unavailable-limit.js'

const REFRESH = 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE'
const EXCHANGE = 'GATEHOUSE_ERR_TOKEN_EXCHANGE_UNAVAILABLE'
const LIMIT = 60_000

/** A clock that moves only when told: the edges are exact to the millisecond. */
function limited(limitMs = LIMIT) {
  let now = 1_700_000_000_000
  const clock = {
    advance(ms: number) {
      now += ms
    },
  }
  return { clock, limit: new UnavailableLimit(limitMs, () => now) }
}

/** A failure answered with `code`, and the IdP's Retry-After as translate.ts bounded it, if any. */
function answer(code: ErrorCode, retryAfter?: number) {
  const err = gatehouseError(code)
  return retryAfter === undefined ? err : withRetryAfter(err, retryAfter)
}

t.test("a failure backs the session off for its answer's Retry-After, and no other session", async (t) => {
  const { clock, limit } = limited()
  const retryAfter = retryAfterOf(REFRESH)! * 1_000
  t.equal(limit.backingOff('a'), undefined, 'nothing failed yet')
  t.equal(limit.failed('a', answer(REFRESH)), false)
  t.equal(limit.backingOff('a')?.code, REFRESH)
  t.equal(limit.backingOff('b'), undefined, 'per session')
  clock.advance(retryAfter - 1)
  t.equal(limit.backingOff('a')?.code, REFRESH, 'until the last millisecond of it')
  clock.advance(1)
  t.equal(limit.backingOff('a'), undefined, 'and not after')
})

t.test(
  "the IdP's own Retry-After is waited out, and a request kept back is told what is left of it",
  async (t) => {
    const { clock, limit } = limited()
    const failure = answer(REFRESH, 30)
    t.equal(limit.failed('a', failure), false)
    t.equal(retryAfterFor(failure), 30, 'the failing request is told the 30 s kept')
    clock.advance(10_000)
    const kept = limit.backingOff('a')!
    t.equal(kept.code, REFRESH)
    t.equal(retryAfterFor(kept), 20, '20 s left')
    t.match(kept.reason, /^identity provider not asked/)
    clock.advance(19_500)
    t.equal(retryAfterFor(limit.backingOff('a')!), 1, 'half a second left: told 1, never 0')
    clock.advance(500)
    t.equal(limit.backingOff('a'), undefined, 'over after 30 s, not the catalogue 5')
  },
)

t.test('no wait outlasts the limit the count would end the session at', async (t) => {
  const { clock, limit } = limited()
  const first = answer(REFRESH, 50)
  limit.failed('a', first)
  t.equal(retryAfterFor(first), 50, 'within the limit: as the IdP asked')
  clock.advance(50_000)
  const second = answer(REFRESH, 50)
  t.equal(limit.failed('a', second), false)
  t.equal(retryAfterFor(second), 10, 'cut to the 10 s left of the 60 s limit')
  clock.advance(10_000)
  t.equal(limit.backingOff('a'), undefined, 'so the attempt that decides comes at the limit')
  t.equal(limit.failed('a', answer(REFRESH, 50)), true, 'and ends the session')
})

t.test('the catalogue value stays the least wait, however little of the limit is left', async (t) => {
  const { clock, limit } = limited()
  limit.failed('a', answer(REFRESH))
  clock.advance(LIMIT - 1_000)
  const late = answer(REFRESH, 30)
  t.equal(limit.failed('a', late), false)
  t.equal(retryAfterFor(late), retryAfterOf(REFRESH), '1 s left: the catalogue 5 s')
})

t.test("an exchange's wait is bounded by the limit, though it does not count towards it", async (t) => {
  const { limit } = limited()
  const exchange = answer(EXCHANGE, 300)
  limit.exchangeFailed('a', 'ledger', exchange)
  t.equal(retryAfterFor(exchange), LIMIT / 1_000)
})

t.test('an answer without Retry-After, or no answer of the catalogue, is not waited out', async (t) => {
  const { limit } = limited()
  t.equal(limit.failed('a', gatehouseError('GATEHOUSE_ERR_IDP_CLIENT_REFUSED')), false)
  t.equal(limit.backingOff('a'), undefined)
  t.equal(limit.failed('b', undefined), false)
  t.equal(limit.backingOff('b'), undefined)
})

t.test('the limit counts from the first failed refresh, not from the last', async (t) => {
  const { clock, limit } = limited()
  t.equal(limit.failed('a', answer(REFRESH)), false)
  clock.advance(LIMIT - 1)
  t.equal(limit.failed('a', answer(REFRESH)), false, 'just within')
  t.equal(limit.backingOff('a')?.code, REFRESH, 'and waiting again')
  clock.advance(1)
  t.equal(limit.failed('a', answer(REFRESH)), true, 'past it')
})

t.test(
  "an exchange's failure backs off its own audience's exchanges, without starting the count, nor moving it",
  async (t) => {
    const { clock, limit } = limited()
    limit.exchangeFailed('a', 'ledger', answer(EXCHANGE, 300))
    t.equal(limit.backingOff('a', 'ledger')?.code, EXCHANGE)
    t.equal(limit.backingOff('a'), undefined, "not the session's refreshes")
    t.equal(limit.backingOff('a', 'payroll'), undefined, "nor another audience's exchanges")
    clock.advance(LIMIT)
    t.equal(limit.failed('a', answer(REFRESH)), false, 'the first failed refresh starts it')
    t.equal(limit.backingOff('a')?.code, REFRESH)
    t.equal(limit.backingOff('a', 'ledger'), undefined, "and a refresh's failure holds back no exchange")
    clock.advance(LIMIT / 2)
    limit.exchangeFailed('a', 'ledger', answer(EXCHANGE))
    t.equal(limit.backingOff('a', 'ledger')?.code, EXCHANGE, 'the latest answer is the one repeated')
    clock.advance(LIMIT / 2)
    t.equal(limit.failed('a', answer(REFRESH)), true, 'counted from that refresh')
  },
)

t.test('clear ends both the back-off and the count', async (t) => {
  const { clock, limit } = limited()
  limit.failed('a', answer(REFRESH))
  clock.advance(LIMIT)
  limit.clear('a')
  t.equal(limit.backingOff('a'), undefined)
  t.equal(limit.failed('a', answer(REFRESH)), false, 'a new count')
})
