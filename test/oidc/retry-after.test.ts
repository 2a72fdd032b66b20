/**
 * Reading an identity provider's Retry-After (RFC 9110 §10.2.3): both of
 * its forms, the three forms of an HTTP-date (§5.6.7), against the
 * answer's own Date, and nothing else: a value the grammar does not allow
 * is no wait at all, never NaN or a negative number.
 */
import fc from 'fast-check'
import t from 'tap'
import {
  boundedRetryAfter,
  MAX_RETRY_AFTER,
  parseHttpDate,
  parseRetryAfter,
  retryAfterOfAnswer,
} from '../../src/oidc/retry-after.js'

/** RFC 9110 §5.6.7's own example instant, Sun, 06 Nov 1994 08:49:37 GMT. */
const EXAMPLE = Date.UTC(1994, 10, 6, 8, 49, 37)
const NOW = Date.UTC(2025, 0, 1)

t.test('delay-seconds is a count of seconds', async (t) => {
  t.equal(parseRetryAfter('30', NOW), 30)
  t.equal(parseRetryAfter('0', NOW), 0)
  t.equal(parseRetryAfter('007', NOW), 7, 'leading zeros are digits too')
  t.equal(parseRetryAfter('9'.repeat(400), NOW), Number.MAX_SAFE_INTEGER, 'a huge one stays a finite number')
})

t.test('a value of neither form asks for nothing', async (t) => {
  for (const value of [
    '',
    '-1',
    '1.5',
    '30s',
    '1e3',
    '0x10',
    'Infinity',
    'NaN',
    'soon',
    '30, 40',
    ' 30',
    'Sun, 06 Nov 1994 08:49:37 gmt',
    'sun, 06 Nov 1994 08:49:37 GMT',
    'Sun, 6 Nov 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 08:49:37 +0000',
    '1994-11-06T08:49:37Z',
    'Sun, 30 Feb 1994 08:49:37 GMT',
    'Sun, 00 Nov 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 24:00:00 GMT',
    'Sun, 06 Nov 1994 08:60:00 GMT',
    'Sun, 06 Nov 1994 08:49:61 GMT',
  ]) {
    t.equal(parseRetryAfter(value, NOW), undefined, JSON.stringify(value))
  }
})

t.test('the three forms of an HTTP-date name the same instant', async (t) => {
  t.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT', NOW), EXAMPLE, 'IMF-fixdate')
  t.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', NOW), EXAMPLE, 'rfc850-date')
  t.equal(parseHttpDate('Sun Nov  6 08:49:37 1994', NOW), EXAMPLE, 'asctime-date, read as UTC')
  t.equal(parseHttpDate('Sun Nov 16 08:49:37 1994', NOW), EXAMPLE + 10 * 86_400_000, 'asctime, two-digit day')
  t.equal(
    parseHttpDate('Sat, 31 Dec 2016 23:59:60 GMT', NOW),
    Date.UTC(2017, 0, 1),
    'a leap second is a second',
  )
})

t.test('a two-digit year more than 50 years ahead is in the past century', async (t) => {
  t.equal(new Date(parseHttpDate('Monday, 01-Jan-74 00:00:00 GMT', NOW)!).getUTCFullYear(), 2074)
  t.equal(new Date(parseHttpDate('Tuesday, 01-Jan-76 00:00:00 GMT', NOW)!).getUTCFullYear(), 1976)
})

t.test(
  "every IMF-fixdate Node writes reads back as its instant, whatever the host's time zone",
  async (t) => {
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(1970, 0, 1), max: Date.UTC(9999, 11, 31) }), (ms) => {
        const instant = ms - (ms % 1_000)
        return parseHttpDate(new Date(instant).toUTCString(), NOW) === instant
      }),
      { numRuns: 1000 },
    )
    t.pass('1000 instants from 1970 to 9999: each read back exactly')
  },
)

t.test('a date asks for the seconds until it, rounded up, and 0 once it has passed', async (t) => {
  const date = new Date(NOW + 30_000).toUTCString()
  t.equal(parseRetryAfter(date, NOW), 30)
  t.equal(parseRetryAfter(date, NOW + 100), 30, 'a part of a second is waited in full')
  t.equal(parseRetryAfter(date, NOW + 30_000), 0)
  t.equal(parseRetryAfter(date, NOW + 90_000), 0, 'in the past: no wait, not a negative one')
})

t.test("an answer's date is read against its own Date, not this host's clock", async (t) => {
  const sent = 'Sun, 06 Nov 1994 08:49:37 GMT'
  t.equal(
    retryAfterOfAnswer(new Headers({ date: sent, 'retry-after': 'Sun, 06 Nov 1994 08:50:17 GMT' })),
    40,
    "40 s after the IdP's Date, though this host's clock says 30 years later",
  )
  t.equal(retryAfterOfAnswer(new Headers({ date: sent, 'retry-after': '12' })), 12)
  const ahead = new Date(Date.now() + 60_000).toUTCString()
  const fromHere = retryAfterOfAnswer(new Headers({ 'retry-after': ahead }))
  t.ok(fromHere !== undefined && fromHere > 55 && fromHere <= 60, 'without a Date: against this host')
  t.ok(
    (retryAfterOfAnswer(new Headers({ date: 'yesterday', 'retry-after': ahead })) ?? 0) > 55,
    'a Date that is no HTTP-date: against this host',
  )
  t.equal(retryAfterOfAnswer(new Headers({ date: sent })), undefined, 'no Retry-After')
  t.equal(retryAfterOfAnswer(new Headers({ 'retry-after': 'later' })), undefined)
})

t.test('the wait is at least the catalogue value and at most MAX_RETRY_AFTER', async (t) => {
  t.equal(MAX_RETRY_AFTER, 300)
  t.equal(boundedRetryAfter(0, 5), 5)
  t.equal(boundedRetryAfter(1, 5), 5)
  t.equal(boundedRetryAfter(30, 5), 30)
  t.equal(boundedRetryAfter(86_400, 5), MAX_RETRY_AFTER)
  t.equal(boundedRetryAfter(Number.MAX_SAFE_INTEGER, 5), MAX_RETRY_AFTER)
})
