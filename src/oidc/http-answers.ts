/**
 * What an IdP's answer says in HTTP's own words rather than OAuth's: a
 * redirect, or a web framework's error body whose `error` is the status's
 * reason phrase. Read by `translateIdpError` (translate.ts), so that the
 * answer is classified and named for what it is.
 */
import { STATUS_CODES } from 'node:http'

/**
 * Whether `error` is the reason phrase of `status` (RFC 9110 §15), in any
 * letter case, as a phrase (words apart, not joined by `_` as OAuth codes
 * are): a web framework's generic error body, not an OAuth error code
 * (RFC 6749 §5.2's are tokens such as `invalid_grant`). Spring Boot answers
 * a path it has no handler for, or a request Spring Security refuses, with
 * `{"status":404,"error":"Not Found",…}`; read as an unknown OAuth code, a
 * token endpoint that moved in a deploy ended every session whose token
 * came due, where the same 404 as a page keeps them (`refused`).
 */
export function isReasonPhrase(status: number, error: string): boolean {
  const phrase = STATUS_CODES[status]
  const words = (text: string) => text.toLowerCase().replace(/\s+/g, ' ').trim()
  return phrase !== undefined && words(error) === words(phrase)
}

/**
 * Where a redirect pointed, for the log: its origin and path, resolved
 * against the URL that answered; never its query or fragment, which may
 * carry anything (a code, a session), nor userinfo. Undefined without a
 * Location that is an http(s) URL. The IdP's text: the caller bounds it.
 */
export function redirectTarget(location: string | null | undefined, base: unknown): string | undefined {
  if (!location) return undefined
  let url: URL
  try {
    url = new URL(location, typeof base === 'string' && base !== '' ? base : undefined)
  } catch {
    return undefined
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined
  return `${url.origin}${url.pathname}`
}
