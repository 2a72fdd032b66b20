import fastifyCookie, { type SerializeOptions } from '@fastify/cookie'
import secureSession, { type Session } from '@fastify/secure-session'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { GatehouseConfig } from '../config/types.js'
import { deriveCookieKeys } from '../crypto/derived-keys.js'
import type { LoginState } from '../types.js'
import { LoginCookies } from './login-cookies.js'
import { OpenedCookies } from './opened-cookies.js'
import { codecOf, SealedCookies, type SecureSessionCodec } from './sealed-cookie.js'

declare module '@fastify/secure-session' {
  interface SessionData {
    /**
     * The session's key (`SessionKey`, base64url): the only thing the
     * session cookie carries. The record's id is derived from it.
     */
    key: string
    /** What the previous version's cookie carried instead: the record id alone. Read only to end that session. */
    id: string
    /** PKCE verifier, state, nonce and returnTo between `/login` and `/callback`. */
    login: LoginState
  }
}

/** The login cookie lives only as long as a user plausibly spends at the IdP. */
export const LOGIN_STATE_TTL_SECONDS = 600

type CookieNamed = { readonly session: Pick<GatehouseConfig['session'], 'cookieName'> }

/**
 * The start of every sign-in cookie's name; the sign-in's state hash
 * follows (`LoginCookies`). A configured cookie name has no `.`, so no
 * session cookie, of this frontend or another, is ever one of them.
 */
export function loginCookiePrefix(config: CookieNamed): string {
  return `${config.session.cookieName}-login.`
}

/** The one login cookie of the versions before: read by a callback, and never forwarded or set upstream. */
export function formerLoginCookieName(config: CookieNamed): string {
  return `${config.session.cookieName}-login`
}

/** Opened session cookies kept per instance: one per active browser session, about 0.5 KB each. */
export const OPENED_COOKIES_MAX = 10_000

/** The cookies of an app: the session's, read on first use and written when changed, and the sign-ins'. */
export interface GatehouseCookies {
  readonly session: SealedCookies
  /** One per sign-in in progress; only the sign-in routes (`/login`, `/callback`) read or write them. */
  readonly login: LoginCookies
  /** The session cookies opened before, by sealed value. */
  readonly opened: OpenedCookies
}

declare module 'fastify' {
  interface FastifyInstance {
    sealedCookies: GatehouseCookies
  }
}

export interface CookiesOptions {
  /** With `frontends`, the other frontends' sign-in cookies share this one's bound (`LoginCookies`). */
  readonly config: Pick<GatehouseConfig, 'session' | 'server'> & Partial<Pick<GatehouseConfig, 'frontends'>>
  /** The sessions' clock, epoch ms. Default `Date.now`. */
  readonly now?: (() => number) | undefined
  /** Most session cookies kept opened. Default `OPENED_COOKIES_MAX`. */
  readonly openedMax?: number | undefined
  /** The frontend whose cookies these are (`frontends[].name`); `''` or absent: the one of a config without `frontends:`. */
  readonly frontend?: string | undefined
}

/**
 * Sealed cookies: the session cookie, which holds only the session's key,
 * and a short-lived login-state cookie per sign-in in progress, which lets
 * the callback land on any instance. The cookie keys come from HKDF (`deriveCookieKeys`);
 * libsodium, inside @fastify/secure-session, does the sealing. The first
 * key seals, the others only open, so rotating is `secrets: [new, old]`;
 * a cookie opened with an old key is sealed again with the new one.
 *
 * secure-session's own hooks open every registered cookie on every request
 * (a libsodium open, a JSON parse and a `Proxy` each). So it is registered
 * in a scope of its own that serves no route, for its sealing alone, and
 * each request opens only the cookie it reads, when it reads it, through a
 * bounded cache of values opened before (`OpenedCookies`). The session
 * cookie's name is a parameter of its `SealedCookies`, not of the sealing.
 */
export const cookiesPlugin = fp(
  async function cookies(app: FastifyInstance, opts: CookiesOptions) {
    const { config } = opts
    const now = opts.now ?? Date.now
    const key = deriveCookieKeys(config.session.secrets, opts.frontend)
    const cookie = { path: '/', httpOnly: true, secure: config.server.secure }
    const sessionCookie = {
      ...cookie,
      sameSite: config.session.sameSite,
      maxAge: Math.ceil(config.session.absoluteTimeout / 1000),
      // A site past the browser's cookies per domain (180 in Chromium) has
      // the least recently used purged: the session cookie, sent before an
      // upstream's answer set the rest, would go first. Chromium purges
      // lower priorities first; others ignore the attribute.
      priority: 'high' as const,
    }
    // Lax whatever the session's: it must come back on the IdP's redirect
    // to the callback, a top-level navigation from another site.
    const loginCookie = { ...cookie, sameSite: 'lax' as const, maxAge: LOGIN_STATE_TTL_SECONDS }
    // The parser and `reply.setCookie` for every route; no hook parses the
    // cookies of requests that never read one.
    await app.register(fastifyCookie, { hook: false })
    let codec: SecureSessionCodec | undefined
    await app.register(async function sealing(scope) {
      await scope.register(secureSession, [
        {
          sessionName: 'session',
          cookieName: config.session.cookieName,
          key,
          expiry: Math.ceil(config.session.absoluteTimeout / 1000),
          cookie: sessionCookie,
        },
        {
          sessionName: 'loginState',
          // Unused: only its key and expiry seal the sign-in cookies, whose names vary.
          cookieName: formerLoginCookieName(config),
          key,
          expiry: LOGIN_STATE_TTL_SECONDS,
          cookie: loginCookie,
        },
      ])
      codec = codecOf(scope)
    })
    const sealing = codec!
    // Tests and tools seal and open cookies as the gateway does.
    app.decorate('decodeSecureSession', sealing.decode as FastifyInstance['decodeSecureSession'])
    app.decorate('encodeSecureSession', sealing.encode as FastifyInstance['encodeSecureSession'])
    app.decorate('createSecureSession', sealing.create)

    const opened = new OpenedCookies(opts.openedMax ?? OPENED_COOKIES_MAX)
    const parse = (header: string) => app.parseCookie(header)
    const serialize = (name: string, value: string, options: SerializeOptions) =>
      app.serializeCookie(name, value, options)
    const shared = { codec: sealing, parse, serialize, now, idleTimeout: config.session.idleTimeout }
    const session = new SealedCookies({
      ...shared,
      sessionName: 'session',
      cookieName: config.session.cookieName,
      cookie: sessionCookie,
      expiry: Math.ceil(config.session.absoluteTimeout / 1000),
      cache: opened,
      slot: Symbol('gatehouse.sessionCookie'),
    })
    // Read once per sign-in: nothing to gain from keeping them opened.
    const login = new LoginCookies({
      codec: sealing,
      sessionName: 'loginState',
      prefix: loginCookiePrefix(config),
      formerName: formerLoginCookieName(config),
      others: config.frontends
        ?.filter((f) => f.cookieName !== config.session.cookieName)
        .map((f) => loginCookiePrefix({ session: f })),
      cookie: loginCookie,
      parse,
      serialize,
    })
    app.decorate('sealedCookies', { session, login, opened } satisfies GatehouseCookies)
    decorateSlot(app, session, 'session')
    // Only the session cookie is written here; the sign-in routes write
    // theirs as they start or end a sign-in (auth-routes.ts).
    app.addHook('onSend', (request, reply, payload, done) => {
      session.write(request, reply)
      done(null, payload)
    })
  },
  { name: 'gatehouse-cookies', fastify: '5.x' },
)

/**
 * `request[name]`, the request's cookie, made on first use: no hook runs
 * for it, and a request that never reads it never opens it.
 */
function decorateSlot(app: FastifyInstance, jar: SealedCookies, name: 'session'): void {
  app.decorateRequest(jar.slot, null)
  app.decorateRequest(name, {
    getter(this: FastifyRequest) {
      return jar.of(this) as unknown as Session
    },
  })
}
