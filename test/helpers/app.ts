import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildGateway, type GatewayOptions } from '../../src/server/gateway.js'
import { SessionKey } from '../../src/session/session-key.js'
import type { SessionData, SessionRef } from '../../src/session/types.js'
import { session } from '../session/fixtures.js'
import { type TestConfigInput, testConfig } from './gateway.js'

/** Nothing listens on port 1: discovery fails at once, and keeps retrying in the background. */
export const UNREACHABLE_ISSUER = 'http://127.0.0.1:1'

/**
 * A gateway built and ready but not listening, for `app.inject()`: no IdP
 * process, no socket of its own. Closed when `t` ends. What needs the IdP
 * (a login redirect, a refresh) answers 503 here; CSRF, `returnTo`, the
 * session cookie, error bodies and 404s are all decided before that.
 */
export async function buildTestApp(
  t: Test,
  input: Partial<TestConfigInput> = {},
  options: GatewayOptions = {},
): Promise<FastifyInstance> {
  const app = await buildGateway(
    testConfig({ port: 3000, issuer: UNREACHABLE_ISSUER, routes: [], ...input }),
    options,
  )
  t.teardown(() => app.close())
  await app.ready()
  return app
}

/**
 * A gateway with no IdP, listening on a free loopback port, for tests that
 * speak to it over a socket (raw bytes, redirects, framing); closed when
 * `t` ends. `port` is where it listens, `url` its base.
 */
export async function listeningTestApp(
  t: Test,
  input: Partial<TestConfigInput> = {},
  options: GatewayOptions = {},
): Promise<{ readonly app: FastifyInstance; readonly port: number; readonly url: string }> {
  const app = await buildGateway(
    testConfig({ port: 0, issuer: UNREACHABLE_ISSUER, routes: [], ...input }),
    options,
  )
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  return { app, port, url: `http://127.0.0.1:${port}` }
}

/**
 * A signed-in user without a login: a session with a fresh access token put
 * straight into the app's store, and the `cookie` header that carries its
 * key, sealed as the gateway seals it.
 */
export async function seedSession(
  app: FastifyInstance,
  extra: Partial<SessionData> = {},
): Promise<{ readonly session: SessionData; readonly cookie: string }> {
  const now = Date.now()
  const key = SessionKey.generate()
  const record = session(key.sessionId, now, { key, ...extra })
  await app.gatehouse.stores.sessions.create(record)
  return { session: record, cookie: sealedCookie(app, { key: key.toCookie() }) }
}

/** A `cookie` header with `data` sealed as the gateway seals its session cookie. */
export function sealedCookie(app: FastifyInstance, data: Record<string, unknown>): string {
  const sealed = app.encodeSecureSession(app.createSecureSession(data), 'session')
  // The sealed form is `cipher;nonce`: encoded, as the cookie serializer does.
  return `${app.gatehouse.config.session.cookieName}=${encodeURIComponent(sealed)}`
}

/**
 * The session a browser's cookie value names and opens, as the gateway
 * reads it: for tests that look at a signed-in user's record in the store.
 */
export function sessionRefOf(app: FastifyInstance, cookieValue: string): SessionRef {
  const sealed = app.decodeSecureSession(decodeURIComponent(cookieValue), undefined, 'session')
  const key = SessionKey.fromCookie(sealed?.get('key'))
  if (!key) throw new Error('the cookie carries no session key')
  return { id: key.sessionId, key }
}

/** The refresh token of the session a browser's cookie value names, as the gateway keeps it. */
export async function refreshTokenOf(app: FastifyInstance, cookieValue: string): Promise<string> {
  const ref = sessionRefOf(app, cookieValue)
  const session = await app.gatehouse.stores.sessions.get(ref, Date.now(), { touch: false })
  if (!session?.tokens.refreshToken) throw new Error('the session holds no refresh token')
  return session.tokens.refreshToken
}
