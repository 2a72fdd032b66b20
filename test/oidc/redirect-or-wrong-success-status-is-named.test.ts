/**
 * The gateway follows no redirect from the IdP (oauth4webapi asks fetch
 * not to: credentials and tokens go only to the URLs the configuration and
 * the discovery document name), and takes a success only in the status its
 * endpoint answers with. Both failed with a reason that said `HTTP 301
 * without an OAuth error body`, which sent an operator after an error body
 * when the issuer URL redirected (http to https, a realm's path, a trailing
 * slash). The reason now says where the redirect pointed (its origin and
 * path only: a query may carry anything) or which status was expected.
 * The verdict is the same: transient, the session kept.
 */
import t from 'tap'
import { OidcClient } from '../../src/oidc/client.js'
import { idpFailureOf } from '../../src/oidc/translate.js'
import { testConfig } from '../helpers/gateway.js'
import {
  discoveredClient,
  ISSUER,
  JSON_HEADERS,
  metadata,
  mockAgent,
  tokenAnswer,
} from '../helpers/mock-idp.js'

t.test('discovery redirected: the reason names the redirect and where to', async (t) => {
  const { agent, idp } = mockAgent(t)
  idp.intercept({ path: '/.well-known/openid-configuration', method: 'GET' }).reply(301, '', {
    headers: { location: 'https://idp.test/realms/demo/.well-known/openid-configuration?session=s3cr3t#x' },
  })
  const oidc = new OidcClient(testConfig({ port: 8080, issuer: ISSUER, routes: [] }), Date.now, {}, agent)
  t.teardown(() => oidc.close())
  const err = await oidc.discover().catch((e: unknown) => e)
  t.match(err, { code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE' })
  const failure = idpFailureOf(err)!
  t.match(failure, { answer: 'unparseable', verdict: 'unavailable', status: 301 })
  t.equal(
    failure.reason,
    'HTTP 301 redirect to https://idp.test/realms/demo/.well-known/openid-configuration, which the gateway does not follow',
  )
  t.notMatch(failure.reason, /s3cr3t/, 'no query')
})

t.test('a refresh redirected elsewhere: 503 as before, the reason names the redirect', async (t) => {
  const { idp, oidc } = await discoveredClient(t)
  void tokenAnswer(idp, 302, '', { location: '/login?code=abc' })
  const err = await oidc
    .refresh({ accessToken: 'a', accessTokenExpiresAt: 0, accessTokenLifetime: 1, refreshToken: 'r' })
    .catch((e: unknown) => e)
  t.match(err, { code: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE' })
  t.equal(
    idpFailureOf(err)!.reason,
    'HTTP 302 redirect to https://idp.test/login, which the gateway does not follow',
    'a relative Location is resolved against the endpoint',
  )
})

t.test('a redirect without a usable Location still says it was one', async (t) => {
  const { idp, oidc } = await discoveredClient(t)
  void tokenAnswer(idp, 307, '', {})
  const err = await oidc.clientCredentials([]).catch((e: unknown) => e)
  t.equal(idpFailureOf(err)!.reason, 'HTTP 307 redirect, which the gateway does not follow')
})

t.test(
  'a pushed authorization request answered 200, not 201: the reason says which was expected',
  async (t) => {
    const { idp, oidc } = await discoveredClient(t, {
      metadata: metadata({ pushed_authorization_request_endpoint: `${ISSUER}/par` }),
    })
    idp
      .intercept({ path: '/par', method: 'POST' })
      .reply(200, { request_uri: 'urn:example:x', expires_in: 60 }, { headers: JSON_HEADERS })
    const err = await oidc.authorizationUrl('/').catch((e: unknown) => e)
    t.match(err, { code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE' })
    t.equal(idpFailureOf(err)!.reason, 'HTTP 200 where this endpoint answers 201')
  },
)
