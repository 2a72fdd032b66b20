/**
 * An IdP as undici's MockAgent answers it, for the faults a real
 * oidc-provider cannot be made to show: a malformed body, a 401 with a
 * challenge, an echoed secret, a lost connection. The OidcClient sends
 * through the MockAgent (its `dispatcher` seam, the one its oauth4webapi
 * `customFetch` uses); nothing reaches the network (`disableNetConnect`),
 * and an interceptor a test set up but the client never called fails the
 * test at teardown.
 */
import type { Test } from 'tap'
import { MockAgent, type MockPool } from 'undici'
import type { GatehouseConfig } from '../../src/config/types.js'
import { OidcClient, type OidcObserver } from '../../src/oidc/client.js'
import type { IdpFailure, IdpOperation } from '../../src/oidc/translate.js'
import { CLIENT_ID, type TestConfigInput, testConfig } from './gateway.js'

export const ISSUER = 'https://idp.test'

/** A discovery document with every endpoint Gatehouse uses, and `extra` over it. */
export function metadata(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    issuer: ISSUER,
    authorization_endpoint: `${ISSUER}/auth`,
    token_endpoint: `${ISSUER}/token`,
    userinfo_endpoint: `${ISSUER}/me`,
    jwks_uri: `${ISSUER}/jwks`,
    revocation_endpoint: `${ISSUER}/revoke`,
    end_session_endpoint: `${ISSUER}/logout`,
    // REQUIRED (OpenID Connect Discovery 1.0 §3); RS256 is also what oauth4webapi takes without it.
    id_token_signing_alg_values_supported: ['RS256'],
    ...extra,
  }
}

export const JSON_HEADERS = { 'content-type': 'application/json' } as const

/** A MockAgent that refuses the network and fails the test on an answer nobody asked for. */
export function mockAgent(t: Test): { readonly agent: MockAgent; readonly idp: MockPool } {
  const agent = new MockAgent()
  agent.disableNetConnect()
  t.teardown(async () => {
    agent.assertNoPendingInterceptors()
    await agent.close()
  })
  return { agent, idp: agent.get(ISSUER) }
}

export interface MockIdp {
  readonly idp: MockPool
  readonly oidc: OidcClient
  readonly config: GatehouseConfig
  /** What the observer heard, in order. */
  readonly failures: IdpFailure[]
  readonly accepted: IdpOperation[]
  readonly assumed: IdpOperation[]
}

export interface MockIdpOptions {
  readonly oidc?: TestConfigInput['oidc']
  readonly metadata?: Record<string, unknown>
  readonly now?: () => number
  readonly config?: Partial<TestConfigInput>
}

/** An OidcClient that has discovered the mock IdP. */
export async function discoveredClient(t: Test, options: MockIdpOptions = {}): Promise<MockIdp> {
  const { agent, idp } = mockAgent(t)
  const config = testConfig({
    port: 8080,
    issuer: ISSUER,
    routes: [],
    ...options.config,
    ...(options.oidc ? { oidc: options.oidc } : {}),
  })
  const failures: IdpFailure[] = []
  const accepted: IdpOperation[] = []
  const assumed: IdpOperation[] = []
  const observer: OidcObserver = {
    failed: (failure) => failures.push(failure),
    accepted: (operation) => accepted.push(operation),
    lifetimeAssumed: (operation) => assumed.push(operation),
  }
  const oidc = new OidcClient(config, options.now, observer, agent)
  t.teardown(() => oidc.close())
  idp
    .intercept({ path: '/.well-known/openid-configuration', method: 'GET' })
    .reply(200, options.metadata ?? metadata(), { headers: JSON_HEADERS })
  await oidc.discover()
  return { idp, oidc, config, failures, accepted, assumed }
}

/** What the gateway sent in one call: its headers (names in lower case) and its form body. */
export interface SentRequest {
  readonly headers: Record<string, string>
  readonly body: URLSearchParams
}

/** Expects the next call to the token endpoint and answers it; resolves to what was sent. */
export function tokenAnswer(
  idp: MockPool,
  status: number,
  body: unknown,
  headers: Record<string, string> = typeof body === 'string' ? {} : JSON_HEADERS,
): Promise<SentRequest> {
  return answerAt(idp, '/token', status, body, headers)
}

/** An unsigned ID token: oauth4webapi takes the token endpoint's on TLS's word (OIDC Core §3.1.3.7 item 6), and checks its `alg`. */
function unsignedIdToken(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${part({ alg: 'RS256' })}.${part(claims)}.c2lnbmF0dXJl`
}

/**
 * Starts a login with `extra` (login parameters) and completes it with an
 * ID token for alice, issued now, that carries `claims` too: the login's
 * result, as the callback makes it.
 */
export async function signInWithIdToken(
  mock: MockIdp,
  extra: Record<string, string>,
  claims: Record<string, unknown>,
) {
  const seconds = Math.floor(Date.now() / 1000)
  const { state } = await mock.oidc.authorizationUrl('/', extra)
  void tokenAnswer(mock.idp, 200, {
    access_token: 'an-access-token',
    token_type: 'Bearer',
    expires_in: 300,
    id_token: unsignedIdToken({
      iss: ISSUER,
      aud: CLIENT_ID,
      sub: 'alice',
      nonce: state.nonce,
      iat: seconds,
      exp: seconds + 300,
      ...claims,
    }),
  })
  return mock.oidc.callback(new URL(`https://app.test/auth/callback?code=c&state=${state.state}`), state)
}

/** Expects the next call to the revocation endpoint (RFC 7009) and answers it; resolves to what was sent. */
export function revocationAnswer(
  idp: MockPool,
  status: number,
  body: unknown,
  headers: Record<string, string> = typeof body === 'string' ? {} : JSON_HEADERS,
): Promise<SentRequest> {
  return answerAt(idp, '/revoke', status, body, headers)
}

function answerAt(
  idp: MockPool,
  path: string,
  status: number,
  body: unknown,
  headers: Record<string, string>,
): Promise<SentRequest> {
  return new Promise((resolve) => {
    idp.intercept({ path, method: 'POST' }).reply((request) => {
      resolve({
        headers: Object.fromEntries(
          Object.entries((request.headers ?? {}) as Record<string, string>).map(([k, v]) => [
            k.toLowerCase(),
            v,
          ]),
        ),
        body: new URLSearchParams(String(request.body)),
      })
      return {
        statusCode: status,
        data: typeof body === 'string' ? body : JSON.stringify(body),
        responseOptions: { headers },
      }
    })
  })
}
