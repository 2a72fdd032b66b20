import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import { connectionNamed, isHopByHop } from '../header-rules.js'
import { withoutHighPriority } from './cookie-priority.js'
import type { OwnCookies } from './own-cookies.js'

/** At most one warning per route in this window, however often an upstream misbehaves. */
const WARN_EVERY = 60_000 // 1 min

/** Headers as Node's `writeHead`, `writeEarlyHints` and Fastify's `reply.headers` take them. */
export type OutgoingHeaders = Record<string, string | number | string[] | undefined>

export interface ResponseHygieneOptions {
  /** The route's path, for the log line and the metric label. */
  readonly route: string
  readonly own: OwnCookies
  /** The route lets its upstream send `Clear-Site-Data`. */
  readonly allowClearSiteData: boolean
  /** The route lets its upstream send `NEL` and `Report-To`. */
  readonly allowNetworkErrorLogging: boolean
  /** The route lets its upstream send `Strict-Transport-Security`. */
  readonly allowStrictTransportSecurity: boolean
  /** The route lets its upstream send `X-Accel-Redirect`, `X-Sendfile` and `X-Lighttpd-Send-File`. */
  readonly allowInternalRedirect: boolean
  /** The route lets its upstream send `Service-Worker-Allowed`. */
  readonly allowServiceWorkerScope: boolean
  /** Counts the cookies dropped from one answer. */
  readonly onCookiesDropped?: ((route: string, count: number) => void) | undefined
  readonly now?: (() => number) | undefined
}

/**
 * What an upstream's answer may not tell the browser, for one route: the
 * hop-by-hop headers (src/header-rules.ts), and what would reach past the
 * upstream's own business. A compromised upstream (docs/security.md, threat
 * model) that sets a cookie under one of our names could swap the victim's
 * session for the attacker's, or end it; `Clear-Site-Data` (W3C Clear Site
 * Data §3.1) would wipe every cookie of the origin, ours included. A
 * Network Error Logging policy (`NEL`, with the endpoints of `Report-To`;
 * W3C Network Error Logging §3.1) is the origin's, not the answer's: the
 * browser keeps it for its `max_age` and reports on every request to the
 * origin, every route's, its URL, method, status and timing included, up
 * to all of them (`success_fraction: 1`), to wherever the upstream says,
 * long after the upstream is fixed. So is an HSTS policy
 * (`Strict-Transport-Security`, RFC 6797 §6.1): the browser keeps it for
 * the host, every route's, and its `includeSubDomains` for every sibling
 * host, and takes the first of several fields (§8.1), so an upstream's
 * `max-age=0` ahead of the one the TLS terminator adds switches HSTS off.
 * So is an alternative service (`Alt-Svc`), which no route passes. The
 * front's own directives (`X-Accel-Redirect`, `X-Sendfile`) are for the
 * proxy in front, whose backend is the gateway, not the upstream. Every
 * proxied answer, hijacked or sent through Fastify, and every early hint,
 * passes through here; a WebSocket's 101 is the gateway's own and carries
 * none of the upstream's headers.
 */
export class ResponseHygiene {
  readonly #options: ResponseHygieneOptions
  readonly #now: () => number
  /** Headers this route's upstream may not send on: origin-wide ones, and those for the next hop only. */
  readonly #withheld: ReadonlySet<string>
  #lastWarn = Number.NEGATIVE_INFINITY

  constructor(options: ResponseHygieneOptions) {
    this.#options = options
    this.#now = options.now ?? Date.now
    this.#withheld = new Set([
      // RFC 7838 §9.1: whoever can add `Alt-Svc` to some answers can send the
      // browser's traffic for the whole origin, the session cookie with it, to
      // another port or host (one with a certificate for this host), for its
      // `ma`. The gateway's front, which terminates TLS, is the one server
      // that can say where this origin is served; an upstream's says where
      // the upstream is. No route may pass it.
      'alt-svc',
      // RFC 9110 §11.7.1, §11.7.3: a proxy's challenge and its answer apply
      // only to the next client on the response chain, here the gateway,
      // as the request's `Proxy-Authorization` is for the hop it is sent to.
      'proxy-authenticate',
      'proxy-authentication-info',
      ...(options.allowClearSiteData ? [] : ['clear-site-data']),
      ...(options.allowNetworkErrorLogging ? [] : ['nel', 'report-to']),
      ...(options.allowStrictTransportSecurity ? [] : ['strict-transport-security']),
      // Read by the proxy in front, not the browser: nginx (by default, for
      // every backend it proxies to), Apache's mod_xsendfile and lighttpd
      // serve the path or file named in the answer's place. Their backend
      // is the gateway, so each route's upstream would speak for it: serve
      // an internal location or file the front keeps for its trusted
      // backend, or another route's path with the browser's cookie.
      ...(options.allowInternalRedirect ? [] : ['x-accel-redirect', 'x-sendfile', 'x-lighttpd-send-file']),
      // W3C Service Workers §2.4, "Service-Worker-Allowed": a worker's scope
      // may not reach above its script's path unless the script's answer
      // says so. With it, a worker served under one route controls the
      // whole origin, every route's pages and /auth/*, for as long as it
      // stays registered, however the upstream is later fixed.
      ...(options.allowServiceWorkerScope ? [] : ['service-worker-allowed']),
    ])
  }

  /**
   * Copies into `into` the upstream's headers that may reach the browser;
   * `Set-Cookie` only on a final answer (`final`), and vetted.
   */
  copy(upstream: IncomingHttpHeaders, into: OutgoingHeaders, final: boolean, log: FastifyBaseLogger): void {
    const named = connectionNamed(upstream.connection)
    const withheld = this.#withheld
    for (const name in upstream) {
      if (isHopByHop(name, named)) continue
      if (name === 'set-cookie') {
        if (!final) continue
        const kept = this.#setCookies(upstream[name]!, log)
        if (kept !== undefined) into[name] = kept
        continue
      }
      if (withheld.has(name)) continue
      into[name] = upstream[name]!
    }
  }

  /** The `Set-Cookie` values that may reach the browser; `undefined` when none. */
  #setCookies(value: string | string[], log: FastifyBaseLogger): string | string[] | undefined {
    const own = this.#options.own
    if (typeof value === 'string') {
      if (!own.ownsSetCookie(value)) return withoutHighPriority(value)
      this.#dropped(1, log)
      return undefined
    }
    const kept = value.filter((line) => !own.ownsSetCookie(line))
    if (kept.length !== value.length) this.#dropped(value.length - kept.length, log)
    return kept.length === 0 ? undefined : kept.map(withoutHighPriority)
  }

  #dropped(count: number, log: FastifyBaseLogger): void {
    const { route, onCookiesDropped } = this.#options
    onCookiesDropped?.(route, count)
    const now = this.#now()
    if (now - this.#lastWarn < WARN_EVERY) return
    this.#lastWarn = now
    // Names and values stay out of the log: a value is a credential.
    log.warn({ route, dropped: count }, "upstream tried to set the gateway's own cookie; dropped")
  }
}

/**
 * What says outright that a shared cache may store an answer to a request
 * with `Authorization` (`public`, `s-maxage`), and what keeps every shared
 * cache from storing it (`no-store`, and an unqualified `private`:
 * `private="field"` leaves the rest storable). RFC 9111 §3.5 lets
 * `must-revalidate` open such an answer to shared caches too, but it is not
 * taken as saying so: upstreams send `max-age=60, must-revalidate` on a
 * user's own data to mean "revalidate once stale", and a CDN in front of
 * the gateway then served it to every user for that minute. Only spaces
 * and tabs are whitespace between directives (RFC 9110 §5.6.3, OWS): a
 * cache takes `<NBSP>public` (byte 0xA0) as a directive it does not know,
 * so it must not read here as `public`.
 */
const SAYS_WHO_MAY_STORE = /(?:^|,)[ \t]*(?:public|s-maxage|no-store|private(?![ \t]*=))[ \t]*(?:[=,]|$)/i

/** A quoted-string (RFC 9110 §5.6.4), its escapes included. */
const QUOTED = /"(?:[^"\\]|\\.)*"?/g

/** `public` or `s-maxage`: the upstream opened the answer to shared caches outright. */
const OPENS = /(?:^|,)[ \t]*(?:public|s-maxage)[ \t]*(?:[=,]|$)/i

/**
 * RFC 9213 targeted cache-control fields: `CDN-Cache-Control`, and one a
 * CDN reads as its own (`Cloudflare-CDN-Cache-Control`,
 * `Vercel-CDN-Cache-Control`). A cache they target obeys them in place of
 * `Cache-Control` (§2.1), with its directives.
 */
const TARGETED = /^(?:[a-z0-9-]+-)?cdn-cache-control$/

/**
 * Fields a cache in front obeys over `Cache-Control` whose grammar has no
 * `private`: `Surrogate-Control` (W3C Edge Architecture; Fastly, Varnish,
 * Akamai, Cloudflare) and nginx's `X-Accel-Expires` (its `proxy_cache`).
 */
const SURROGATE: ReadonlySet<string> = new Set(['surrogate-control', 'x-accel-expires'])

/** A field's value as one line, as a list's members join (RFC 9110 §5.3). */
function textOf(value: string | number | string[]): string {
  return Array.isArray(value) ? value.join(', ') : String(value)
}

/** The directives of a cache-control value, its quoted field lists (§5.2.2.4) emptied. */
function directivesOf(text: string): string {
  return text.includes('"') ? text.replace(QUOTED, '""') : text
}

/**
 * Marks an answer `private` (RFC 9111 §5.2.2.7) unless its `Cache-Control`
 * says who may store it. The gateway sent the upstream the user's token in
 * `Authorization`, which §3.5 keeps shared caches from storing answers to;
 * the browser sent only a cookie, which no rule does. So an upstream that
 * answered a user's own data with `max-age=60`, as §3.5 lets it, would
 * have a CDN or caching proxy in front of the gateway serve it to the next
 * user. The browser's own cache still may store it. A CDN reads a targeted
 * field (`CDN-Cache-Control`) instead, so each gets the same `private`; and
 * `Surrogate-Control` or `X-Accel-Expires`, which such caches obey over
 * `Cache-Control` whatever it says, go unless `Cache-Control` opened the
 * answer to shared caches itself (`public`, `s-maxage`).
 */
export function privateToSharedCaches(headers: OutgoingHeaders): void {
  const value = headers['cache-control']
  let opened = false
  if (value === undefined) headers['cache-control'] = 'private'
  else {
    const text = textOf(value)
    const directives = directivesOf(text)
    if (!SAYS_WHO_MAY_STORE.test(directives)) headers['cache-control'] = `private, ${text}`
    else opened = OPENS.test(directives)
  }
  for (const name in headers) {
    if (SURROGATE.has(name)) {
      if (!opened) delete headers[name]
    } else if (name !== 'cache-control' && name.endsWith('cache-control') && TARGETED.test(name)) {
      const text = textOf(headers[name]!)
      if (!SAYS_WHO_MAY_STORE.test(directivesOf(text))) headers[name] = `private, ${text}`
    }
  }
}
