/**
 * An exchange answer with `token_type: N_A` is the IdP saying that what it
 * issued is not usable as an access token (RFC 8693 §2.2.1), and it was
 * sent upstream as `Authorization: Bearer` all the same, whatever its
 * `issued_token_type` said. Now the route answers 502
 * `token_exchange_wrong_token_type`: nothing reaches the upstream, nothing
 * is kept, the session and its other routes carry on, and the log says
 * which member was refused, never the token. A `refresh_token` in an
 * exchange answer is not taken, whatever else the answer holds: neither
 * kept nor logged. And an answer bound otherwise than its request (a
 * DPoP token to no proof, a Bearer one to a proof), a 503 counted as an
 * outage before, is the same 502. Against the dev IdP (oidc-provider),
 * whose edge gives the exchange answers a real IdP would not.
 */
import t from 'tap'
import type { DevIdp } from '../../dev/idp.js'
import { TOKEN_EXCHANGE } from '../../dev/idp-exchange.js'
import { sessionRefOf } from '../helpers/app.js'
import { LEDGER_EXCHANGE, STACK_EXCHANGE } from '../helpers/audience-stack.js'
import { boundTo } from '../helpers/dpop.js'
import { DpopVerifier, startDpopUpstream } from '../helpers/dpop-resource-server.js'
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

t.test(
  'an exchange answer bound otherwise than its request is refused with a 502, both ways (RFC 9449 §5)',
  async (t) => {
    let idp: DevIdp | undefined
    const verifier = new DpopVerifier((token) => boundTo(idp!, token), { acceptBearer: true })
    const upstream = await startDpopUpstream(verifier)
    t.teardown(() => upstream.close())
    const stack = await startObservedStack(t, {
      accessTokenTtl: 600,
      routes: () => [
        route('/api/orders', upstream.url),
        route('/api/ledger', upstream.url, { token: 'exchange', exchange: LEDGER_EXCHANGE }),
        // The ID token: the session's access token is bound, and the IdP takes it only with a proof.
        route('/api/ledger-bearer', upstream.url, {
          token: 'exchange',
          exchange: { ...LEDGER_EXCHANGE, subjectToken: 'id_token' },
          dpop: false,
        }),
      ],
      idp: { tokenExchange: STACK_EXCHANGE },
      config: { oidc: { dpop: true } },
    })
    idp = stack.idp
    const base = stack.gateway.url
    const { jar } = await login(base)

    // As oidc-provider answers: bound to the proof's key, or Bearer without a proof.
    for (const [path, scheme] of [
      ['/api/ledger', 'DPoP'],
      ['/api/ledger-bearer', 'Bearer'],
    ] as const) {
      const before = upstream.verdicts.length
      const answer = await apiCall(jar, `${base}${path}/x`)
      t.equal(answer.status, 200, `${path}: served ${answer.text.slice(0, 400)}`)
      t.match(
        upstream.verdicts[before],
        { ok: true, scheme },
        `${path}: a ${scheme} token, and the upstream takes it`,
      )
    }

    stack.clock.advance(10 * 60_000)
    const forwarded = upstream.verdicts.length
    for (const [path, type, why] of [
      ['/api/ledger', 'Bearer', /token_type Bearer, to a request with a DPoP proof/],
      ['/api/ledger-bearer', 'DPoP', /token_type DPoP, to a request with no DPoP proof/],
    ] as const) {
      stack.idp.answer('token', {
        status: 200,
        grantType: TOKEN_EXCHANGE,
        body: { access_token: `wrongly-bound-${type}-0123456789`, token_type: type, expires_in: 300 },
      })
      const refused = await apiCall(jar, `${base}${path}/y`)
      t.equal(refused.status, 502, `${path}: ${type} refused`)
      t.match(refused.json(), { error: 'token_exchange_wrong_token_type', message: why })
    }
    t.equal(upstream.verdicts.length, forwarded, 'nothing reached the upstream')
    stack.idp.answer('token')
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'the session carries on')
    t.notMatch(JSON.stringify(stack.lines), /wrongly-bound/, 'no token in any log line')
  },
)
