/**
 * UnavailableLimit on its own: how long a failing session waits before its
 * next IdP call (the catalogue's Retry-After of what it answered), and that
 * only a refresh's failure counts towards the limit.
 */
import t from 'tap'
import { retryAfterOf } from '../../src/errors.js'
import { UnavailableLimit } from '../../src/tokens/unavailable-limit.js'

const REFRESH = 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE'
const EXCHANGE = 'GATEHOUSE_ERR_TOKEN_EXCHANGE_UNAVAILABLE'
const LIMIT = 60_000

/** A clock that moves only when told: the edges are exact to the millisecond. */
function limited() {
  let now = 1_700_000_000_000
  const clock = {
    advance(ms: number) {
      now += ms
    },
  }
  return { clock, limit: new UnavailableLimit(LIMIT, () => now) }
}

t.test("a failure backs the session off for its answer's Retry-After, and no other session", async (t) => {
  const { clock, limit } = limited()
  const retryAfter = retryAfterOf(REFRESH)! * 1_000
  t.equal(limit.backingOff('a'), undefined, 'nothing failed yet')
  t.equal(limit.failed('a', REFRESH), false)
  t.equal(limit.backingOff('a'), REFRESH)
  t.equal(limit.backingOff('b'), undefined, 'per session')
  clock.advance(retryAfter - 1)
  t.equal(limit.backingOff('a'), REFRESH, 'until the last millisecond of it')
  clock.advance(1)
  t.equal(limit.backingOff('a'), undefined, 'and not after')
})

t.test('an answer without Retry-After, or no answer of the catalogue, is not waited out', async (t) => {
  const { limit } = limited()
  t.equal(limit.failed('a', 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED'), false)
  t.equal(limit.backingOff('a'), undefined)
  t.equal(limit.failed('b', undefined), false)
  t.equal(limit.backingOff('b'), undefined)
})

t.test('the limit counts from the first failed refresh, not from the last', async (t) => {
  const { clock, limit } = limited()
  t.equal(limit.failed('a', REFRESH), false)
  clock.advance(LIMIT - 1)
  t.equal(limit.failed('a', REFRESH), false, 'just within')
  t.equal(limit.backingOff('a'), REFRESH, 'and waiting again')
  clock.advance(1)
  t.equal(limit.failed('a', REFRESH), true, 'past it')
})

t.test("an exchange's failure backs off without starting the count, nor moving it", async (t) => {
  const { clock, limit } = limited()
  limit.exchangeFailed('a', EXCHANGE)
  t.equal(limit.backingOff('a'), EXCHANGE)
  clock.advance(LIMIT)
  t.equal(limit.failed('a', REFRESH), false, 'the first failed refresh starts it')
  clock.advance(LIMIT / 2)
  limit.exchangeFailed('a', EXCHANGE)
  t.equal(limit.backingOff('a'), EXCHANGE, 'the latest answer is the one repeated')
  clock.advance(LIMIT / 2)
  t.equal(limit.failed('a', REFRESH), true, 'counted from that refresh')
})

t.test('clear ends both the back-off and the count', async (t) => {
  const { clock, limit } = limited()
  limit.failed('a', REFRESH)
  clock.advance(LIMIT)
  limit.clear('a')
  t.equal(limit.backingOff('a'), undefined)
  t.equal(limit.failed('a', REFRESH), false, 'a new count')
})
