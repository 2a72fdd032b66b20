import { type GatehouseError, retryAfterOf, withRetryAfter } from '../errors.js'

/**
 * The most seconds an identity provider's `Retry-After` can make the gateway
 * wait, and tell the browser to wait: 5 minutes, the default
 * `tokens.unavailableLimit`, past which a session of nothing but 503s ends
 * anyway. The header is the IdP's to fill: a broken or hostile one
 * (`Retry-After: 86400`, a date next year) must not park every session and
 * client route for a day, when the outage may end in a minute. A session's
 * wait is bounded again by what is left of its own limit (UnavailableLimit).
 */
export const MAX_RETRY_AFTER = 300 // 5 min

/** What is read of an answer's headers: a fetch `Headers`, undici's or the global one. */
export interface HeaderReader {
  get(name: string): string | null
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const MONTH = `(${MONTHS.join('|')})`
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})'
/** RFC 9110 §5.6.7: `Sun, 06 Nov 1994 08:49:37 GMT`. */
const IMF_FIXDATE = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`)
/** RFC 9110 §5.6.7, obsolete: `Sunday, 06-Nov-94 08:49:37 GMT`. */
const RFC850_DATE = new RegExp(
  `^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`,
)
/** RFC 9110 §5.6.7, obsolete: `Sun Nov  6 08:49:37 1994`, in UTC though it does not say so. */
const ASCTIME_DATE = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ${MONTH} (\\d{2}| \\d) ${TIME} (\\d{4})$`)

interface DateParts {
  readonly day: string
  readonly month: string
  readonly year: number
  readonly time: readonly string[]
}

/** The fields of an HTTP-date in any of its three forms, unchecked. */
function dateParts(value: string, now: number): DateParts | undefined {
  const imf = IMF_FIXDATE.exec(value)
  if (imf) return { day: imf[1]!, month: imf[2]!, year: Number(imf[3]), time: imf.slice(4) }
  const rfc850 = RFC850_DATE.exec(value)
  if (rfc850) {
    // §5.6.7: a two-digit year more than 50 years ahead is the latest past year that ends so.
    const thisYear = new Date(now).getUTCFullYear()
    let year = Math.floor(thisYear / 100) * 100 + Number(rfc850[3])
    if (year > thisYear + 50) year -= 100
    return { day: rfc850[1]!, month: rfc850[2]!, year, time: rfc850.slice(4) }
  }
  const asctime = ASCTIME_DATE.exec(value)
  if (asctime)
    return { day: asctime[2]!, month: asctime[1]!, year: Number(asctime[6]), time: asctime.slice(3, 6) }
  return undefined
}

/**
 * An HTTP-date (RFC 9110 §5.6.7) as epoch ms, or undefined for anything
 * else. All three forms, as a recipient must accept; case-sensitive and
 * exact, as the grammar is: `Date.parse` would take `1` or `30 s` for a
 * date, and read asctime's form in the host's time zone. `now` places an
 * obsolete two-digit year.
 */
export function parseHttpDate(value: string, now: number): number | undefined {
  const parts = dateParts(value, now)
  if (parts === undefined) return undefined
  const [hour, minute, second] = parts.time.map(Number) as [number, number, number]
  const month = MONTHS.indexOf(parts.month)
  const day = Number(parts.day)
  // §5.6.7's ranges; 60 is a leap second. A 30 February is no date.
  if (hour > 23 || minute > 59 || second > 60 || day < 1) return undefined
  if (new Date(Date.UTC(parts.year, month, day)).getUTCMonth() !== month) return undefined
  return Date.UTC(parts.year, month, day, hour, minute, second)
}

/**
 * The seconds a `Retry-After` value (RFC 9110 §10.2.3) asks for: its
 * delay-seconds, or how long after `now` its HTTP-date is, 0 for one in
 * the past. Undefined for a value of neither form (`-1`, `1.5`, `soon`),
 * which says nothing the caller could honour.
 */
export function parseRetryAfter(value: string, now: number): number | undefined {
  if (/^\d+$/.test(value)) return Math.min(Number(value), Number.MAX_SAFE_INTEGER)
  const date = parseHttpDate(value, now)
  return date === undefined ? undefined : Math.max(0, Math.ceil((date - now) / 1_000))
}

/**
 * The seconds an answer's `Retry-After` asks for, or undefined without a
 * usable one. A date is read against the answer's own `Date` (RFC 9110
 * §6.6.1), as a cache reads `Expires` (RFC 9111 §4.2.1), so that a clock
 * skew between the IdP and this host neither shortens nor stretches the
 * wait; against this host's clock when the answer has none.
 */
export function retryAfterOfAnswer(headers: HeaderReader | undefined): number | undefined {
  const value = headers?.get('retry-after')
  if (headers === undefined || value === undefined || value === null) return undefined
  const date = headers.get('date')
  const sent = date === null ? undefined : parseHttpDate(date, Date.now())
  return parseRetryAfter(value, sent ?? Date.now())
}

/**
 * What the client is told to wait, and the gateway waits, for an answer
 * whose catalogue value is `floor` and whose IdP asked for `asked`
 * seconds: what it asked, but never less than the catalogue value (which
 * already paces a recovering IdP) nor more than MAX_RETRY_AFTER.
 */
export function boundedRetryAfter(asked: number, floor: number): number {
  return Math.max(floor, Math.min(asked, MAX_RETRY_AFTER))
}

/**
 * `error`, waiting as long as the IdP asked (`asked` seconds), bounded
 * (`boundedRetryAfter`): the client is told so, and the gateway itself
 * asks no sooner for the same session or token (UnavailableLimit,
 * ClientTokens). Without an ask, or for a code that asks no wait, as it is.
 */
export function honouring(asked: number | undefined, error: GatehouseError): GatehouseError {
  const floor = retryAfterOf(error.code)
  if (asked === undefined || floor === undefined) return error
  return withRetryAfter(error, boundedRetryAfter(asked, floor))
}
