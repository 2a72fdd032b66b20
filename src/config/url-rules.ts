/*
 * The shape of the URLs a config names (an issuer, an upstream, a resource,
 * a public origin) and of the sign-in path under a public origin.
 */
import type { Add } from './finding.js'
import { LOOPBACK_HOST as LOOPBACK } from './loopback.js'

/** `<your-org>`, `{tenantid}`: what documentation examples leave for the reader to fill in. */
export const PLACEHOLDER = /<[^<>]*>|\{[^{}]*\}/

export function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value)
  } catch {
    return undefined
  }
}

/**
 * What WHATWG URL parsing drops (tabs and line breaks anywhere, C0 controls
 * and spaces at either end) from a text the config keeps as written: a
 * trailing line break from `$(cat file)` parsed, and was then sent and
 * compared with the line break in it.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
export const DROPPED_BY_URL_PARSING = /[\u0000-\u0020\u007f]/

export const DROPPED_IN_URL =
  'holds a space, tab or line break (from a file or a variable?), which a URL parser drops and Gatehouse would keep: remove it'

/** A URL's user-info: Gatehouse sends it nowhere, and would log it with the URL. */
export function carriesCredentials(url: URL): boolean {
  return url.username !== '' || url.password !== ''
}

export const CREDENTIALS_IN_URL =
  'must not carry credentials (user:password@): Gatehouse never sends them, and the URL is logged'

/** An origin the browser sees: http(s), nothing after the origin, https unless loopback. */
export function checkPublicUrl(value: string, at: (string | number)[], add: Add): void {
  const publicUrl = parseUrl(value)
  if (!publicUrl || !['http:', 'https:'].includes(publicUrl.protocol)) {
    add(at, 'must be an http(s) URL such as https://app.example.com')
  } else if (publicUrl.pathname !== '/' || publicUrl.search || publicUrl.hash) {
    add(at, 'must be an origin only, without a path, query or fragment')
  } else if (carriesCredentials(publicUrl)) {
    add(at, CREDENTIALS_IN_URL)
  } else if (publicUrl.protocol === 'http:' && !LOOPBACK.test(publicUrl.hostname)) {
    // RFC 10017 §6.1.3.2: the BFF MUST set Secure, which a browser
    // honours only over https.
    add(
      at,
      'must use https, so cookies are Secure; plain http is allowed only for loopback hosts (localhost, 127.0.0.0/8, [::1])',
    )
  }
}

/** A sign-in base path: `/auth`, `/partners/auth`. */
export function checkBasePath(basePath: string, at: (string | number)[], add: Add): void {
  if (!/^\/[A-Za-z0-9._~\-/]*$/.test(basePath) || basePath.includes('//') || basePath === '/') {
    add(at, 'must be a path such as /auth')
  }
}
