/**
 * An IdP that answers a token request which carried no DPoP proof with
 * `token_type: DPoP`: the token is bound to no key the gateway holds, and
 * would go upstream as `Authorization: Bearer`, where RFC 9449 §7.2 has a
 * resource server refuse it. The answer is refused at the IdP, with the
 * reason in the log, instead of as an upstream 401 no one can explain.
 */
import t from 'tap'
import { audienceOf } from '../../src/tokens/audience.js'
import { route } from '../helpers/gateway.js'
import { discoveredClient, tokenAnswer } from '../helpers/mock-idp.js'

const DPOP_ANSWER = { access_token: 'bound-to-nothing', token_type: 'DPoP', expires_in: 300 }
const WHY = /DPoP access token to a request with no DPoP proof/

function failed(promise: Promise<unknown>): Promise<(Error & { reason?: string }) | undefined> {
  return promise.then(
    () => undefined,
    (err: Error & { reason?: string }) => err,
  )
}

t.test('a client-credentials token of a dpop: false route', async (t) => {
  const { idp, oidc } = await discoveredClient(t)
  void tokenAnswer(idp, 200, DPOP_ANSWER)
  const refused = await failed(oidc.clientCredentials(['api']))
  t.ok(refused, 'refused')
  t.match(refused?.reason, WHY)
})

t.test('a refresh without a key', async (t) => {
  const { idp, oidc } = await discoveredClient(t)
  void tokenAnswer(idp, 200, DPOP_ANSWER)
  const refused = await failed(
    oidc.refresh({ accessToken: 'at', accessTokenExpiresAt: Date.now(), refreshToken: 'rt' } as never),
  )
  t.ok(refused, 'refused')
  t.match(refused?.reason, WHY)
})

t.test('an exchange for a dpop: false route', async (t) => {
  const { idp, oidc } = await discoveredClient(t)
  const audience = audienceOf({
    ...route('/x', 'http://x:1'),
    token: 'exchange',
    exchange: { subjectToken: 'access_token', audience: 'ledger', scopes: [], grant: 'token-exchange' },
    dpop: false,
  } as never)!
  void tokenAnswer(idp, 200, DPOP_ANSWER)
  // An exchange's answers are judged in one place (src/oidc/exchange.ts): its own 502, not an outage.
  const refused = await failed(oidc.exchange('subject-token', audience))
  t.match(refused, {
    code: 'GATEHOUSE_ERR_TOKEN_EXCHANGE_WRONG_TOKEN_TYPE',
    statusCode: 502,
    message: /token_type DPoP, to a request with no DPoP proof/,
  })
})
