/**
 * The endpoints the gateway uses outside oauth4webapi, which checks only
 * its own: the browser is sent to `authorization_endpoint` and, with the
 * ID token, to `end_session_endpoint`; logout tokens are verified against
 * the keys at `jwks_uri`. A document of an https issuer that names one as
 * plain http (the ID token in clear, keys a network could replace), or as
 * no URL at all (a TypeError, a 500, at the first sign-in), is refused at
 * discovery, naming the field, as an issuer mismatch is.
 */
import t from 'tap'
import { MockAgent } from 'undici'
import { OidcClient } from '../../src/oidc/client.js'
import { idpFailureOf } from '../../src/oidc/translate.js'
import { testConfig } from '../helpers/gateway.js'
import { ISSUER, JSON_HEADERS, metadata, mockAgent } from '../helpers/mock-idp.js'

const DISCOVERY = { path: '/.well-known/openid-configuration', method: 'GET' } as const

const refused: [string, Record<string, unknown>, RegExp][] = [
  [
    'end_session_endpoint on plain http',
    { end_session_endpoint: 'http://idp.test/logout' },
    /end_session_endpoint "http:\/\/idp\.test\/logout", which is not an https URL/,
  ],
  ['jwks_uri on plain http', { jwks_uri: 'http://idp.test/jwks' }, /jwks_uri "http:\/\/idp\.test\/jwks"/],
  [
    'a javascript: end_session_endpoint',
    { end_session_endpoint: 'javascript:alert(1)' },
    /end_session_endpoint/,
  ],
  ['authorization_endpoint missing', { authorization_endpoint: undefined }, /no authorization_endpoint/],
  [
    'authorization_endpoint not a URL',
    { authorization_endpoint: 'not a url' },
    /authorization_endpoint "not a url"/,
  ],
  [
    'authorization_endpoint not a string',
    { authorization_endpoint: 42 },
    /authorization_endpoint as a number/,
  ],
  // Each of these once passed discovery and failed every sign-in with a 400
  // once the user had signed in at the IdP, while /readyz said ready.
  ['token_endpoint missing', { token_endpoint: undefined }, /no token_endpoint; Gatehouse redeems codes/],
  ['token_endpoint a number', { token_endpoint: 42 }, /token_endpoint as a number/],
  ['token_endpoint null', { token_endpoint: null }, /token_endpoint as null/],
  [
    'token_endpoint relative',
    { token_endpoint: '/token' },
    /token_endpoint "\/token", which is not an absolute URL/,
  ],
  [
    'token_endpoint on plain http',
    { token_endpoint: 'http://idp.test/token' },
    /token_endpoint "http:\/\/idp\.test\/token", which is not an https URL/,
  ],
  // Quoted as the text of the list, this read as a refused https URL.
  ['jwks_uri a list', { jwks_uri: [`${ISSUER}/jwks`] }, /jwks_uri as a list; Gatehouse fetches/],
]

for (const [name, extra, reason] of refused) {
  t.test(`${name}: discovery refused, 503 idp_unavailable naming the field`, async (t) => {
    const { agent, idp } = mockAgent(t)
    const oidc = new OidcClient(testConfig({ port: 8080, issuer: ISSUER, routes: [] }), Date.now, {}, agent)
    t.teardown(() => oidc.close())
    const document = metadata(extra)
    for (const [key, value] of Object.entries(extra)) if (value === undefined) delete document[key]
    idp.intercept(DISCOVERY).reply(200, document, { headers: JSON_HEADERS })
    const err = await oidc.discover().then(
      () => t.fail('discovered'),
      (e: unknown) => e,
    )
    t.match(err, { code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE', statusCode: 503 })
    t.match(idpFailureOf(err), { operation: 'discovery', reason })
    t.equal(oidc.discovered, false)
  })
}

t.test('https endpoints on other hosts are the IdP’s to choose: discovered', async (t) => {
  const { agent, idp } = mockAgent(t)
  const oidc = new OidcClient(testConfig({ port: 8080, issuer: ISSUER, routes: [] }), Date.now, {}, agent)
  t.teardown(() => oidc.close())
  idp
    .intercept(DISCOVERY)
    .reply(
      200,
      metadata({ end_session_endpoint: 'https://login.example/logout', jwks_uri: 'https://keys.example/' }),
      {
        headers: JSON_HEADERS,
      },
    )
  await oidc.discover()
  t.equal(oidc.metadata?.jwks_uri, 'https://keys.example/')
})

t.test(
  'optional endpoints that are no https URL: read as not advertised, each named in a hint',
  async (t) => {
    const { agent, idp } = mockAgent(t)
    const oidc = new OidcClient(testConfig({ port: 8080, issuer: ISSUER, routes: [] }), Date.now, {}, agent)
    t.teardown(() => oidc.close())
    idp.intercept(DISCOVERY).reply(
      200,
      metadata({
        pushed_authorization_request_endpoint: 42,
        revocation_endpoint: 'http://idp.test/revoke',
        userinfo_endpoint: '',
      }),
      { headers: JSON_HEADERS },
    )
    await oidc.discover()
    t.equal(oidc.metadata?.pushed_authorization_request_endpoint, undefined)
    t.equal(oidc.metadata?.revocation_endpoint, undefined)
    t.equal(oidc.metadata?.userinfo_endpoint, undefined)
    t.match(oidc.misadvertised, [
      /^the identity provider advertises pushed_authorization_request_endpoint as a number; read as not advertised \(RFC 9126/,
      /^the identity provider advertises revocation_endpoint "http:\/\/idp\.test\/revoke", which is not an https URL; read as not advertised \(RFC 7009/,
      /^the identity provider advertises userinfo_endpoint as an empty string; read as not advertised/,
    ])
  },
)

t.test(
  'an http issuer (loopback only, as the config allows): plain http endpoints on loopback hosts only',
  async (t) => {
    const issuer = 'http://127.0.0.1:8081'
    const agent = new MockAgent()
    agent.disableNetConnect()
    t.teardown(() => agent.close())
    const oidc = new OidcClient(testConfig({ port: 8080, issuer, routes: [] }), Date.now, {}, agent)
    t.teardown(() => oidc.close())
    const document = (extra: Record<string, unknown>) =>
      metadata({
        issuer,
        authorization_endpoint: `${issuer}/auth`,
        token_endpoint: 'http://localhost:8082/token',
        jwks_uri: `${issuer}/jwks`,
        end_session_endpoint: 'http://[::1]:8083/logout',
        userinfo_endpoint: `${issuer}/me`,
        revocation_endpoint: `${issuer}/revoke`,
        ...extra,
      })
    const pool = agent.get(issuer)
    pool.intercept(DISCOVERY).reply(200, document({}), { headers: JSON_HEADERS })
    await oidc.discover()
    t.equal(oidc.metadata?.token_endpoint, 'http://localhost:8082/token', 'another loopback host and port')

    // Over a network the client's credentials, codes and tokens would travel in clear.
    pool
      .intercept(DISCOVERY)
      .reply(200, document({ token_endpoint: 'http://idp.example/token' }), { headers: JSON_HEADERS })
    const err = await oidc.discover().then(
      () => t.fail('discovered'),
      (e: unknown) => e,
    )
    t.match(idpFailureOf(err), {
      reason:
        /token_endpoint "http:\/\/idp\.example\/token", which is neither https nor plain http on a loopback host/,
    })
    pool
      .intercept(DISCOVERY)
      .reply(200, document({ revocation_endpoint: 'http://idp.example/revoke' }), { headers: JSON_HEADERS })
    await oidc.discover()
    t.equal(oidc.metadata?.revocation_endpoint, undefined, 'an optional one is read as not advertised')
    t.match(oidc.misadvertised, [/revocation_endpoint "http:\/\/idp\.example\/revoke", which is neither/])
  },
)
