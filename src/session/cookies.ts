import secureSession from '@fastify/secure-session'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { GatehouseConfig } from '../config/types.js'
import { deriveCookieKeys } from '../crypto/derived-keys.js'
import type { LoginState } from '../types.js'

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

declare module 'fastify' {
  interface FastifyRequest {
    loginState: import('@fastify/secure-session').Session<import('@fastify/secure-session').SessionData>
  }
}

/** The login cookie lives only as long as a user plausibly spends at the IdP. */
export const LOGIN_STATE_TTL_SECONDS = 600

export function loginCookieName(config: {
  readonly session: Pick<GatehouseConfig['session'], 'cookieName'>
}): string {
  return `${config.session.cookieName}-login`
}

/**
 * Two sealed cookies: the session cookie, which holds only the session's
 * key, and the short-lived login-state cookie, which lets the callback land
 * on any instance. The cookie keys come from HKDF (`deriveCookieKeys`);
 * libsodium, inside @fastify/secure-session, does the sealing. The first
 * key seals, the others only open, so rotating is `secrets: [new, old]`;
 * secure-session re-seals cookies opened with an old key.
 */
export const cookiesPlugin = fp(
  async function cookies(
    app: FastifyInstance,
    opts: {
      config: Pick<GatehouseConfig, 'session' | 'server'>
      /** The frontend whose cookies these are (`frontends[].name`); `''` or absent: the one of a config without `frontends:`. */
      frontend?: string
    },
  ) {
    const { config } = opts
    const key = deriveCookieKeys(config.session.secrets, opts.frontend)
    const cookie = { path: '/', httpOnly: true, secure: config.server.secure }
    await app.register(secureSession, [
      {
        sessionName: 'session',
        cookieName: config.session.cookieName,
        key,
        expiry: Math.ceil(config.session.absoluteTimeout / 1000),
        cookie: {
          ...cookie,
          sameSite: config.session.sameSite,
          maxAge: Math.ceil(config.session.absoluteTimeout / 1000),
        },
      },
      {
        sessionName: 'loginState',
        cookieName: loginCookieName(config),
        key,
        expiry: LOGIN_STATE_TTL_SECONDS,
        // Lax whatever the session's: it must come back on the IdP's
        // redirect to the callback, a top-level navigation from another site.
        cookie: { ...cookie, sameSite: 'lax' as const, maxAge: LOGIN_STATE_TTL_SECONDS },
      },
    ])
  },
  { name: 'gatehouse-cookies', fastify: '5.x' },
)
