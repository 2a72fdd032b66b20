/**
 * An upstream that answers 431 (Request Header Fields Too Large, RFC 6585
 * §5) to a request the gateway forwarded with a token had its answer
 * passed on: Node's, with an empty body, told the browser its own headers
 * were too large, for as long as the token lived, and nothing was logged
 * above info. The gateway added the Authorization header; now the browser
 * gets 502 `upstream_headers_too_large`, which says so, and the operator a
 * warning naming the route and the size of the header it sent, once a
 * minute per route. A route that forwards no token passes the 431 on as it
 * came: the headers are all the browser's.
 */
import t from 'tap'
import { REPEATED_LINE_INTERVAL } from '../../src/repeated-lines.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'

/** Under `tokens.maxSize` here; over what a Node upstream takes in a whole head (16 KiB). */
const TOKEN = 20_000
const PADDING = 'A'.repeat(64)

t.test("an upstream's 431 to the token the gateway added: 502 that says so, and a warning", async (t) => {
  const plain = await scriptedUpstream()
  t.teardown(() => plain.close())
  plain.answer((res) => res.writeHead(431, { 'content-type': 'text/plain' }).end('too large'))
  const stack = await startObservedStack(t, {
    // The echo upstream is Node's http server, with its default header limit.
    routes: (upstream) => [
      route('/api/orders', upstream),
      route('/api/public', plain.url, { token: 'none' }),
    ],
    idp: {
      quirks: {
        paddedTokens: (grant) => (grant === 'client_credentials' ? undefined : { access_token: TOKEN }),
      },
    },
    // The padded access token is not one the IdP knows: its userinfo would refuse it.
    config: { oidc: { userinfo: false }, maxTokenSize: '64kb' },
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  const warnings = () => stack.lines.filter((l) => l.level >= 40)

  const answers = await Promise.all(Array.from({ length: 5 }, () => apiCall(jar, `${base}/api/orders`)))
  for (const answer of answers) {
    t.equal(answer.status, 502)
    t.match(answer.json(), { error: 'upstream_headers_too_large', message: /access token/ })
  }
  t.equal(stack.upstream.requests.length, 0, 'the upstream refused every one')
  t.equal(warnings().length, 1, 'one line for five refusals')
  t.match(warnings()[0], {
    level: 40,
    code: 'GATEHOUSE_ERR_UPSTREAM_HEADERS_TOO_LARGE',
    route: '/api/orders',
    status: 431,
    authorizationBytes: 'Bearer '.length + TOKEN,
    headerBytes: Number,
  })
  t.ok((warnings()[0]!.headerBytes as number) > TOKEN, 'the whole head sent, the token in it')
  t.notOk(JSON.stringify(stack.lines).includes(PADDING), 'no line quotes the token')

  stack.clock.advance(REPEATED_LINE_INTERVAL)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 502)
  t.match(warnings().slice(1), [{ route: '/api/orders', repeated: 4 }], 'a minute on, written again')
  t.match(await stack.metrics('gatehouse_upstream_errors_total{'), [
    'gatehouse_upstream_errors_total{route="/api/orders",kind="headers_too_large"} 6',
  ])

  const passed = await apiCall(jar, `${base}/api/public`)
  t.equal(passed.status, 431, 'no token added: the 431 is the browser’s, as the upstream sent it')
  t.equal(passed.text, 'too large')
  t.equal(warnings().length, 2, 'and not the gateway’s to warn of')
})
