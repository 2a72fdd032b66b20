/**
 * An exchange answer with `token_type: N_A` is the IdP saying that what it
 * issued is not usable as an access token (RFC 8693 §2.2.1), and it was
 * sent upstream as `Authorization: Bearer` all the same, whatever its
 * `issued_token_type` said. Now the route answers 502
 * `token_exchange_wrong_token_type`: nothing reaches the upstream, nothing
 * is kept, the session and its other routes carry on, and the log says
 * which member was refused, never the token. A `refresh_token` in an
 * exchange answer is not taken, whatever else the answer holds: neither
 * kept nor logged. Against the dev IdP (oidc-provider), whose edge gives
 * the exchange answers a real IdP would not.
 */
import t from 'tap'
import { TOKEN_EXCHANGE } from '../../dev/idp-exchange.js'
import { sessionRefOf } from '../helpers/app.js'
import { LEDGER_EXCHANGE, STACK_EXCHANGE } from '../helpers/audience-stack.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'

const NOT_AN_ACCESS_TOKEN = 'eyJ-an-id-token-issued-as-N_A-0123456789'
const EXCHANGED_REFRESH_TOKEN = 'rt-that-came-with-an-exchange-0123456789'
/** src/tokens/refusal-memory.ts's REFUSAL_MEMORY, ms. */
const MEMORY = 30_000

t.test(
  'an N_A answer is refused with a 502; a refresh_token in any exchange answer is never kept or logged',
  async (t) => {
    const stack = await startObservedStack(t, {
      accessTokenTtl: 600,
      routes: (upstream) => [
        route('/api/orders', upstream),
        route('/api/ledger', upstream, { token: 'exchange', exchange: LEDGER_EXCHANGE }),
      ],
      idp: { tokenExchange: STACK_EXCHANGE },
    })
    const base = stack.gateway.url
    const { jar } = await login(base)
    const app = stack.gateway.app
    const ref = sessionRefOf(app, jar.get(base, 'gatehouse')!)
    const stored = async () => JSON.stringify(await app.gatehouse.stores.sessions.get(ref, stack.clock.now()))
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'signed in')
    const forwarded = stack.upstream.requests.length
    const asked = stack.idp.stats.tokenRequests

    stack.idp.answer('token', {
      status: 200,
      grantType: TOKEN_EXCHANGE,
      body: {
        access_token: NOT_AN_ACCESS_TOKEN,
        issued_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        token_type: 'N_A',
        expires_in: 300,
        refresh_token: EXCHANGED_REFRESH_TOKEN,
      },
    })
    const refused = await apiCall(jar, `${base}/api/ledger/x`)
    t.equal(refused.status, 502)
    t.equal(refused.json().error, 'token_exchange_wrong_token_type')
    t.match(refused.json().message, /token_type N_A/, 'the message says what was refused')
    t.equal(stack.upstream.requests.length, forwarded, 'nothing reached the upstream')
    t.equal((await apiCall(jar, `${base}/api/ledger/y`)).status, 502, 'refused again, from memory')
    t.equal(stack.idp.stats.tokenRequests - asked, 1, 'the IdP was asked once')
    t.equal(
      (await apiCall(jar, `${base}/api/orders`)).status,
      200,
      'the session and its other routes carry on',
    )
    t.notMatch(await stored(), NOT_AN_ACCESS_TOKEN, 'nothing of the answer is kept')
    t.notMatch(await stored(), EXCHANGED_REFRESH_TOKEN)
    const line = stack.lines.find((l) => l.code === 'GATEHOUSE_ERR_TOKEN_EXCHANGE_WRONG_TOKEN_TYPE')
    t.match(line, { level: 40, refused: 'token_type N_A', audience: LEDGER_EXCHANGE.audience })
    t.match(
      await stack.metrics('gatehouse_token_exchanges_total'),
      [/outcome="wrong_token_type".* 1$/],
      'counted once',
    )

    // Past the refusal's memory, an answer the route may forward: its refresh_token is still not taken.
    stack.clock.advance(MEMORY + 1_000)
    stack.idp.answer('token', {
      status: 200,
      grantType: TOKEN_EXCHANGE,
      body: {
        access_token: 'ledger-access-token-0123456789',
        issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        token_type: 'Bearer',
        expires_in: 300,
        refresh_token: EXCHANGED_REFRESH_TOKEN,
      },
    })
    t.equal((await apiCall(jar, `${base}/api/ledger/z`)).status, 200)
    t.equal(stack.upstream.requests.at(-1)?.authorization, 'Bearer ledger-access-token-0123456789')
    t.match(await stored(), 'ledger-access-token-0123456789', 'the exchanged access token is kept')
    t.notMatch(await stored(), EXCHANGED_REFRESH_TOKEN, 'its refresh_token is not')

    const logged = JSON.stringify(stack.lines)
    t.notMatch(logged, NOT_AN_ACCESS_TOKEN, 'no token in any log line')
    t.notMatch(logged, EXCHANGED_REFRESH_TOKEN)
  },
)
