/**
 * An access token goes upstream in the Authorization header, and RFC 6749
 * §A.12 makes it VSCHARs. An IdP's answer whose token held a CR or LF was
 * kept all the same: undici refused the header before dialling, so every
 * request of the route answered `502 upstream_unreachable`, logged as the
 * upstream failing, for as long as the answer's `expires_in` said (a client
 * token for a year). One past `~` (`é`) went out as a byte that is not
 * the token the IdP issued; one ending in a space reached the upstream
 * without it (RFC 9110 §5.5). Now such an answer is invalid: 503 with
 * Retry-After, nothing kept or forwarded, the session and its other routes
 * carry on, and the log names the character, never the token. Against the
 * dev IdP (oidc-provider), whose edge gives the answers a real IdP would not.
 */
import t from 'tap'
import { TOKEN_EXCHANGE } from '../../dev/idp-exchange.js'
import { LEDGER_EXCHANGE, STACK_EXCHANGE } from '../helpers/audience-stack.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'

const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
const YEAR_S = 365 * 24 * 3600

const noVschar = (codePoint: string) => `holds ${codePoint}, which is no VSCHAR (RFC 6749 §A.12)`
const unsendable = [
  { name: 'a CR LF', token: 'issued-0123456789\r\nX-Injected: 1', says: noVschar('U+000D') },
  { name: 'a non-ASCII letter', token: 'issued-é-0123456789', says: noVschar('U+00E9') },
  // A VSCHAR, but one a header field's value loses at its end (RFC 9110
  // §5.5): the upstream is given `issued-0123456789`, which the IdP never issued.
  {
    name: 'a trailing space',
    token: 'issued-0123456789 ',
    says: 'begins or ends with a space, which a header field drops there (RFC 9110 §5.5)',
  },
] as const

for (const { name, token, says } of unsendable) {
  t.test(`an exchanged or client-credentials token with ${name} is refused, not sent`, async (t) => {
    const stack = await startObservedStack(t, {
      accessTokenTtl: 600,
      routes: (upstream) => [
        route('/api/orders', upstream),
        route('/api/ledger', upstream, { token: 'exchange', exchange: LEDGER_EXCHANGE }),
        route('/api/open', upstream, { token: 'client', scopes: ['reports.read'], anonymous: true }),
      ],
      idp: { tokenExchange: STACK_EXCHANGE },
    })
    const base = stack.gateway.url
    const { jar } = await login(base)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'signed in')

    for (const [grantType, path, error, caller] of [
      [TOKEN_EXCHANGE, '/api/ledger', 'token_exchange_unavailable', jar],
      ['client_credentials', '/api/open', 'client_token_unavailable', new CookieJar()],
    ] as const) {
      const forwarded = stack.upstream.requests.length
      stack.idp.answer('token', {
        status: 200,
        grantType,
        body: {
          access_token: token,
          token_type: 'Bearer',
          issued_token_type: ACCESS_TOKEN_TYPE,
          expires_in: YEAR_S,
        },
      })
      const refused = await apiCall(caller, `${base}${path}/x`)
      t.equal(refused.status, 503, `${path}: 503, not the upstream's fault`)
      t.equal(refused.json().error, error)
      t.match(refused.json().message, says, 'says why')
      const wait = Number(refused.headers.get('retry-after'))
      t.ok(wait > 0, 'with Retry-After')
      t.equal(stack.upstream.requests.length, forwarded, 'nothing reached the upstream')
      t.equal(
        (await apiCall(jar, `${base}/api/orders`)).status,
        200,
        'the session and its other routes carry on',
      )

      // The IdP's next answer is taken: the refused one was not kept.
      stack.idp.answer('token')
      stack.clock.advance(wait * 1_000)
      t.equal((await apiCall(caller, `${base}${path}/y`)).status, 200, `${path}: served after Retry-After`)
      const sent = stack.upstream.requests.at(-1)!.authorization!
      t.ok(await stack.idp.isActive(sent.slice('Bearer '.length)), 'with a token the IdP issued')
    }

    t.notOk(
      stack.lines.some((l) => l.msg === 'upstream request failed'),
      'no upstream was blamed',
    )
    t.notMatch(JSON.stringify(stack.lines), 'issued-', 'no line quotes the token')
  })
}

t.test('a sign-in whose access token has a CR LF fails, and gives its grant back', async (t) => {
  const stack = await startObservedStack(t, {
    idp: { quirks: { accessTokenSuffix: (grant) => (grant === 'authorization_code' ? '\r\n' : undefined) } },
  })
  const base = stack.gateway.url
  const { jar, callback } = await login(base)
  t.equal(callback.status, 400, 'the login page says it failed')
  t.match(callback.text, 'U+000D', 'and why')
  t.equal(jar.get(base, 'gatehouse'), undefined, 'no session cookie')
  t.equal(stack.idp.stats.revocations, 1, 'the refresh token it carried was given back')
})

t.test('a refresh whose access token has a CR LF: 503, the rotated refresh token kept', async (t) => {
  const suffix: { text?: string } = {}
  const stack = await startObservedStack(t, {
    accessTokenTtl: 60,
    idp: { quirks: { accessTokenSuffix: (grant) => (grant === 'refresh_token' ? suffix.text : undefined) } },
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  stack.idp.resetStats()
  suffix.text = '\r\nX-Injected: 1'
  stack.clock.advance(61_000)
  const refused = await apiCall(jar, `${base}/api/orders`)
  t.equal(refused.status, 503)
  t.equal(refused.json().error, 'token_refresh_unavailable')
  t.match(refused.json().message, 'U+000D')
  t.equal(stack.upstream.requests.length, 0, 'no token was forwarded')

  delete suffix.text
  stack.clock.advance(Number(refused.headers.get('retry-after')) * 1_000)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'the next answer is taken')
  t.equal(stack.idp.stats.refreshGrants, 2)
  t.equal(stack.idp.stats.refreshReplays, 0, 'with the refresh token the refused answer rotated')
  t.notOk(
    stack.lines.some((l) => l.msg === 'upstream request failed'),
    'no upstream was blamed',
  )
})
