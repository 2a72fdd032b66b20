/**
 * A discovery document whose endpoint carries a user name or password
 * (`https://client:secret@idp.example/token`): fetch refuses to make a
 * request of such a URL (WHATWG Fetch, "new Request": a TypeError), and
 * RFC 9110 §4.2.4 has no http(s) URI carry userinfo. The document was
 * discovered, `/readyz` said ready, and every call to that endpoint failed
 * as `unparseable` with a TypeError for a reason, which quoted the user
 * name and password into the log. Such an endpoint is now no endpoint
 * Gatehouse may call, as one on plain http is: a required one refuses the
 * document, an optional one is read as not advertised, and neither
 * message quotes the userinfo.
 */
import t from 'tap'
import { OidcClient } from '../../src/oidc/client.js'
import { endpointProblem } from '../../src/oidc/discovered-endpoints.js'
import { idpFailureOf } from '../../src/oidc/translate.js'
import { testConfig } from '../helpers/gateway.js'
import { discoveredClient, ISSUER, JSON_HEADERS, metadata, mockAgent } from '../helpers/mock-idp.js'

const DISCOVERY = { path: '/.well-known/openid-configuration', method: 'GET' } as const

for (const field of ['token_endpoint', 'authorization_endpoint', 'jwks_uri', 'end_session_endpoint'])
  t.test(`a ${field} with a user name and password: discovery refused, naming the field`, async (t) => {
    const { agent, idp } = mockAgent(t)
    const oidc = new OidcClient(testConfig({ port: 8080, issuer: ISSUER, routes: [] }), Date.now, {}, agent)
    t.teardown(() => oidc.close())
    idp
      .intercept(DISCOVERY)
      .reply(200, metadata({ [field]: 'https://client:s3cr3t@idp.test/endpoint' }), { headers: JSON_HEADERS })
    const err = await oidc.discover().then(
      () => t.fail('discovered'),
      (e: unknown) => e,
    )
    t.match(err, { code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE', statusCode: 503 })
    const reason = idpFailureOf(err)?.reason ?? ''
    t.match(
      reason,
      new RegExp(`advertises ${field} "https://idp\\.test/endpoint", which carries a user name or password`),
    )
    t.notMatch(reason, /client|s3cr3t/, 'the userinfo is not quoted')
    t.equal(oidc.discovered, false)
  })

t.test('a user name alone, on a loopback http issuer too, is refused the same', async (t) => {
  const issuer = new URL('http://127.0.0.1:9/')
  t.equal(
    endpointProblem('http://admin@127.0.0.1:9/token', issuer),
    '"http://127.0.0.1:9/token", which carries a user name or password (RFC 9110 §4.2.4), which fetch refuses to send a request to',
  )
  t.equal(endpointProblem('http://127.0.0.1:9/token', issuer), undefined, 'without, as before')
})

t.test('a revocation_endpoint with a password: read as not advertised, logout does without it', async (t) => {
  const { oidc } = await discoveredClient(t, {
    metadata: metadata({ revocation_endpoint: 'https://:s3cr3t@idp.test/revoke' }),
  })
  t.equal(oidc.metadata?.revocation_endpoint, undefined)
  t.equal(await oidc.revoke('rt'), false, 'nothing sent: the MockAgent has no interceptor for it')
})
