/**
 * An exchange answer whose access token is the very token the gateway
 * presented to be exchanged (an IdP whose exchange policy passes the
 * subject through, or one gone wrong) was forwarded: the session's login
 * token, or its ID token as a Bearer token when the answer named no
 * `issued_token_type`, reached the upstream of a route configured to get
 * a token of its own audience, the confusion token exchange exists to
 * prevent. Now it is refused as a token the route may not forward: 502
 * `token_exchange_wrong_token_type`, nothing forwarded or kept, the session
 * and its other routes carry on, and the log says what was refused, never
 * the token. Against the dev IdP (oidc-provider), whose edge gives the
 * answers a real IdP would not.
 */
import t from 'tap'
import { TOKEN_EXCHANGE } from '../../dev/idp-exchange.js'
import { LEDGER_EXCHANGE, STACK_EXCHANGE } from '../helpers/audience-stack.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'

const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'

for (const { subjectToken, issued } of [
  { subjectToken: 'access_token', issued: ACCESS_TOKEN_TYPE },
  { subjectToken: 'id_token', issued: undefined },
] as const) {
  t.test(`an answer that gives the ${subjectToken} back is refused with a 502`, async (t) => {
    const stack = await startObservedStack(t, {
      accessTokenTtl: 600,
      routes: (upstream) => [
        route('/api/orders', upstream),
        route('/api/ledger', upstream, {
          token: 'exchange',
          exchange: { ...LEDGER_EXCHANGE, subjectToken },
        }),
      ],
      idp: { tokenExchange: STACK_EXCHANGE },
    })
    const base = stack.gateway.url
    const { jar } = await login(base)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'signed in')
    const forwarded = stack.upstream.requests.length
    const echoed: string[] = []
    stack.idp.answer('token', {
      status: 200,
      grantType: TOKEN_EXCHANGE,
      body: (params) => {
        echoed.push(params.get('subject_token')!)
        return {
          access_token: params.get('subject_token'),
          token_type: 'Bearer',
          expires_in: 300,
          ...(issued === undefined ? {} : { issued_token_type: issued }),
        }
      },
    })

    const refused = await apiCall(jar, `${base}/api/ledger/x`)
    t.equal(refused.status, 502)
    t.equal(refused.json().error, 'token_exchange_wrong_token_type')
    t.match(refused.json().message, 'the token it was given to exchange', 'the message says what was refused')
    t.equal(echoed.length, 1, 'the IdP was asked')
    t.equal(stack.upstream.requests.length, forwarded, 'nothing reached the upstream')
    t.equal(
      (await apiCall(jar, `${base}/api/orders`)).status,
      200,
      'the session and its other routes carry on',
    )
    t.match(
      stack.lines.find((l) => l.code === 'GATEHOUSE_ERR_TOKEN_EXCHANGE_WRONG_TOKEN_TYPE'),
      {
        level: 40,
        refused: 'the subject token given back',
      },
    )
    t.match(
      await stack.metrics('gatehouse_token_exchanges_total'),
      [/outcome="wrong_token_type".* 1$/],
      'counted as a token the route may not forward',
    )
    t.notMatch(JSON.stringify(stack.lines), echoed[0]!, 'no line quotes the token')

    // An IdP that issues a token of the route's own is taken again.
    stack.idp.answer('token')
    stack.clock.advance(31_000)
    t.equal((await apiCall(jar, `${base}/api/ledger/y`)).status, 200, 'a real exchange is forwarded')
    t.not(stack.upstream.requests.at(-1)!.authorization, `Bearer ${echoed[0]}`)
  })
}
