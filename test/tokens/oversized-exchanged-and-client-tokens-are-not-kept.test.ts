/**
 * An exchanged (RFC 8693) or client-credentials token had no bound of its
 * own, only the 1 MiB of the whole IdP answer: a 1 MB exchanged token grew
 * the session record in Redis from 1.8 KB to 1.3 MB, was kept for its
 * lifetime, and went out in every request's Authorization header, which
 * the upstream answered 431 for as long; nothing said why above info.
 * Now a token over `tokens.maxSize` is refused as an invalid answer of the
 * IdP: 503 of the route's kind with Retry-After, nothing stored or
 * forwarded, and a warning naming the token and its size, never the token.
 */
import t, { type Test } from 'tap'
import type { PaddedTokens } from '../../dev/idp.js'
import { TOKEN_EXCHANGE } from '../../dev/idp-exchange.js'
import { sessionRefOf } from '../helpers/app.js'
import { LEDGER_EXCHANGE, STACK_EXCHANGE } from '../helpers/audience-stack.js'
import type { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { type ObservedStack, startObservedStack } from '../helpers/observed-stack.js'
import { startRedis } from '../helpers/redis.js'
import { dumpKeys } from '../helpers/redis-dump.js'

const MB = 1_000_000
/** What a token of MB bytes would show in a log line that quoted any of it. */
const PADDING = 'A'.repeat(64)

const redis = await startRedis()
t.teardown(() => redis.stop())

/** Each test's own stack, and what it pads: the grant types named in `padding`, while it holds them. */
async function stackOn(t: Test, store: 'memory' | 'redis', padding: Map<string, PaddedTokens>) {
  const keyPrefix = `${redis.prefix}${t.name.replace(/\W+/g, '-')}:`
  const stack = await startObservedStack(t, {
    routes: (upstream) => [
      route('/api/orders', upstream),
      route('/api/ledger', upstream, { token: 'exchange', exchange: LEDGER_EXCHANGE }),
      route('/api/reports', upstream, { token: 'client', scopes: ['reports.read'] }),
    ],
    idp: { tokenExchange: STACK_EXCHANGE, quirks: { paddedTokens: (grant) => padding.get(grant) } },
    config: store === 'redis' ? { store: redis.url, keyPrefix } : {},
  })
  return { stack, keyPrefix }
}

/** All the store holds for the test: every key under its prefix in Redis; the session record in memory. */
async function storedBytes(stack: ObservedStack, jar: CookieJar, redisPrefix?: string): Promise<number> {
  if (redisPrefix !== undefined) {
    let bytes = 0
    for (const [key, value] of await dumpKeys(redis.url, redisPrefix)) bytes += key.length + value.length
    return bytes
  }
  const app = stack.gateway.app
  const ref = sessionRefOf(app, jar.get(stack.gateway.url, 'gatehouse')!)
  return JSON.stringify(await app.gatehouse.stores.sessions.get(ref, stack.clock.now())).length
}

function tooLargeLines(stack: ObservedStack) {
  return stack.lines.filter((l) => l.code === 'GATEHOUSE_TOKEN_TOO_LARGE')
}

for (const store of ['memory', 'redis'] as const) {
  t.test(`${store}: an exchanged token over tokens.maxSize is neither kept nor forwarded`, async (t) => {
    const padding = new Map<string, PaddedTokens>()
    const { stack, keyPrefix } = await stackOn(t, store, padding)
    const base = stack.gateway.url
    const redisPrefix = store === 'redis' ? keyPrefix : undefined
    const { jar } = await login(base)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200)
    const before = await storedBytes(stack, jar, redisPrefix)
    const forwarded = stack.upstream.requests.length

    padding.set(TOKEN_EXCHANGE, { access_token: MB })
    const refused = await apiCall(jar, `${base}/api/ledger/x`)
    t.equal(refused.status, 503)
    t.equal(refused.json().error, 'token_exchange_unavailable')
    t.ok(Number(refused.headers.get('retry-after')) > 0, 'Retry-After: the IdP may answer better')
    t.equal(stack.idp.stats.tokenExchanges, 1, 'the IdP was asked once')
    t.equal(stack.upstream.requests.length, forwarded, 'nothing reached the upstream')
    const after = await storedBytes(stack, jar, redisPrefix)
    t.ok(after < before + 1024, `the store holds ${after} bytes, as before (${before})`)
    t.match(tooLargeLines(stack), [
      {
        level: 40,
        operation: 'token_exchange',
        token: 'access_token',
        tokenBytes: MB,
        maxTokenSize: 16 * 1024,
      },
    ])
    t.notOk(JSON.stringify(stack.lines).includes(PADDING), 'no line quotes the token')
    t.equal((await apiCall(jar, `${base}/auth/user`)).status, 200, 'the session stays')

    padding.clear()
    stack.clock.advance(Number(refused.headers.get('retry-after')) * 1_000)
    t.equal((await apiCall(jar, `${base}/api/ledger/y`)).status, 200, 'a token of a usual size is taken')
    const sent = stack.upstream.requests.at(-1)!.authorization!
    t.ok(sent.length < 4096, `the upstream got a token of ${sent.length} bytes`)
  })

  t.test(
    `${store}: a client-credentials token over tokens.maxSize is neither cached nor forwarded`,
    async (t) => {
      const padding = new Map<string, PaddedTokens>([['client_credentials', { access_token: MB }]])
      const { stack, keyPrefix } = await stackOn(t, store, padding)
      const base = stack.gateway.url
      const { jar } = await login(base)
      const forwarded = stack.upstream.requests.length
      const before = store === 'redis' ? await storedBytes(stack, jar, keyPrefix) : 0

      const refused = await apiCall(jar, `${base}/api/reports`)
      t.equal(refused.status, 503)
      t.equal(refused.json().error, 'client_token_unavailable')
      t.ok(Number(refused.headers.get('retry-after')) > 0, 'Retry-After')
      t.equal(stack.upstream.requests.length, forwarded, 'nothing reached the upstream')
      if (store === 'redis') {
        const after = await storedBytes(stack, jar, keyPrefix)
        t.ok(after < before + 1024, `the store holds ${after} bytes, as before (${before})`)
      }
      t.match(tooLargeLines(stack), [
        { level: 40, operation: 'client_credentials', token: 'access_token', tokenBytes: MB },
      ])
      t.notOk(JSON.stringify(stack.lines).includes(PADDING), 'no line quotes the token')

      padding.clear()
      stack.clock.advance(Number(refused.headers.get('retry-after')) * 1_000)
      t.equal(
        (await apiCall(jar, `${base}/api/reports`)).status,
        200,
        'nothing was cached: asked again, taken',
      )
      t.equal(stack.idp.stats.clientCredentialsGrants, 2)
    },
  )
}
