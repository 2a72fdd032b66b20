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
  ['authorization_endpoint not a string', { authorization_endpoint: 42 }, /authorization_endpoint/],
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
