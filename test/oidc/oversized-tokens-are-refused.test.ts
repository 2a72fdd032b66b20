/**
 * Every token Gatehouse keeps has a bound, `tokens.maxSize` (16 KiB by
 * default): the access, refresh and ID tokens of a sign-in, those of a
 * refresh, a route's own token (RFC 8707), DPoP-bound or not. Only the
 * 1 MiB of the whole IdP answer bounded them, so an IdP that issued a
 * token too large for any upstream's header had it stored in the session
 * and forwarded for its whole lifetime. A token over the bound is an
 * invalid answer: a sign-in fails with a page that says so (its grant
 * given back), a refresh is 503 with Retry-After and keeps the session
 * and the refresh token the refused answer rotated, and a warning names
 * the token's kind and size, never the token.
 */
import t, { type Test } from 'tap'
import type { PaddedTokens } from '../../dev/idp.js'
import { sessionRefOf } from '../helpers/app.js'
import type { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { type ObservedStack, startObservedStack } from '../helpers/observed-stack.js'

/** Over the default bound of 16 KiB, under most upstreams' 60 KiB. */
const OVER = 20_000
/** What a log line that quoted any of a padded token would show. */
const PADDING = 'A'.repeat(64)
const ORDERS = 'https://orders.example'

function tooLargeLines(stack: ObservedStack) {
  return stack.lines.filter((l) => l.code === 'GATEHOUSE_TOKEN_TOO_LARGE')
}

async function sessionOf(stack: ObservedStack, jar: CookieJar) {
  const app = stack.gateway.app
  const ref = sessionRefOf(app, jar.get(stack.gateway.url, 'gatehouse')!)
  return app.gatehouse.stores.sessions.get(ref, stack.clock.now())
}

for (const kind of ['access_token', 'refresh_token', 'id_token'] as const) {
  t.test(`a sign-in whose ${kind} is over tokens.maxSize fails, and gives its grant back`, async (t) => {
    const stack = await startObservedStack(t, {
      idp: {
        quirks: { paddedTokens: (grant) => (grant === 'authorization_code' ? { [kind]: OVER } : undefined) },
      },
      // The padded access token is not one the IdP knows: its userinfo would refuse it.
      config: { oidc: { userinfo: false } },
    })
    const base = stack.gateway.url
    const { jar, callback } = await login(base)
    t.equal(callback.status, 400, 'the login page says it failed')
    t.match(callback.headers.get('content-type'), /text\/html/)
    t.match(callback.text, /tokens\.maxSize/, 'and why')
    t.equal(jar.get(base, 'gatehouse'), undefined, 'no session cookie')
    t.same(await stack.gateway.app.gatehouse.stores.sessions.idsBySub('alice'), [], 'no session stored')
    t.equal(stack.idp.stats.revocations, 1, 'the refresh token it carried was given back')
    t.match(tooLargeLines(stack), [
      { level: 40, operation: 'code_exchange', token: kind, tokenBytes: OVER, maxTokenSize: 16 * 1024 },
    ])
    t.notOk(JSON.stringify(stack.lines).includes(PADDING), 'no line quotes the token')
  })
}

/** A signed-in stack whose refresh answers are padded while `padding` holds a size. */
async function signedIn(t: Test, options: { dpop?: boolean; resource?: boolean } = {}) {
  const padding: { tokens?: PaddedTokens } = {}
  const stack = await startObservedStack(t, {
    accessTokenTtl: 60,
    idp: {
      quirks: { paddedTokens: (grant) => (grant === 'refresh_token' ? padding.tokens : undefined) },
      ...(options.resource
        ? { resourceIndicators: { resources: { [ORDERS]: { scopes: ['orders.read'] } } } }
        : {}),
    },
    ...(options.dpop ? { config: { oidc: { dpop: true } }, client: { dpopBoundAccessTokens: true } } : {}),
    routes: (upstream) => [route('/api/orders', upstream, options.resource ? { resource: ORDERS } : {})],
  })
  const { jar } = await login(stack.gateway.url)
  stack.idp.resetStats()
  return { stack, jar, padding }
}

const refreshes: readonly {
  name: string
  options: { dpop?: boolean; resource?: boolean }
  operation: string
}[] = [
  { name: "the login's access token", options: {}, operation: 'refresh' },
  {
    name: "a route's own DPoP-bound token",
    options: { dpop: true, resource: true },
    operation: 'route_refresh',
  },
]

for (const { name, options, operation } of refreshes) {
  t.test(
    `a refresh of ${name} over tokens.maxSize: 503, nothing kept but the rotated refresh token`,
    async (t) => {
      const { stack, jar, padding } = await signedIn(t, options)
      const base = stack.gateway.url
      const before = JSON.stringify(await sessionOf(stack, jar)).length
      padding.tokens = { access_token: OVER }
      stack.clock.advance(61_000)
      for (const attempt of [1, 2]) {
        const refused = await apiCall(jar, `${base}/api/orders`)
        t.equal(refused.status, 503, `attempt ${attempt}`)
        t.equal(refused.json().error, 'token_refresh_unavailable')
        const wait = Number(refused.headers.get('retry-after'))
        t.ok(wait > 0, 'Retry-After')
        stack.clock.advance(wait * 1_000)
      }
      t.equal(stack.idp.stats.refreshGrants, 2, 'each attempt redeemed the refresh token the last rotated')
      if (options.dpop) t.equal(stack.idp.stats.dpopTokenRequests, 2, 'each with a proof')
      t.equal(stack.idp.stats.refreshReplays, 0, 'none redeemed a spent one')
      t.equal(stack.upstream.requests.length, 0, 'no token was forwarded')
      const after = JSON.stringify(await sessionOf(stack, jar)).length
      t.ok(after < before + 1024, `the session takes ${after} bytes, as before (${before})`)
      t.match(tooLargeLines(stack), [{ level: 40, operation, token: 'access_token', tokenBytes: OVER }])
      t.notOk(JSON.stringify(stack.lines).includes(PADDING), 'no line quotes the token')

      delete padding.tokens
      t.equal(
        (await apiCall(jar, `${base}/api/orders`)).status,
        200,
        'the next answer of a usual size is taken',
      )
      t.equal(stack.idp.stats.refreshReplays, 0)
      t.equal(stack.idp.stats.revokedGrants, 0, 'the grant stands')
    },
  )
}
