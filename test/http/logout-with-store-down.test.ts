import t from 'tap'
import { errorCatalogue } from '../../src/errors.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { startStack } from '../helpers/stack.js'

// docs/errors.md: browser navigations (login, callback, logout) get an HTML
// page. The logout link is one, so a store outage behind it must not
// answer the browser with JSON, as it once did.
t.test('GET /auth/logout with the session store down answers the browser with an HTML page', async (t) => {
  if (process.env.REDIS_URL) return t.plan(0, 'fault injection needs a redis-server of our own')
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const stack = await startStack(t, { config: { store: redis.url, keyPrefix: redis.prefix } })
  const base = stack.gateway.url
  const { jar } = await login(base)
  const { logoutUrl } = (await apiCall(jar, `${base}/auth/user`)).json<{ logoutUrl: string }>()

  await redis.kill()
  const answer = await jarFetch(jar, `${base}${logoutUrl}`, { headers: { accept: 'text/html' } })
  const spec = errorCatalogue.GATEHOUSE_ERR_STORE_UNAVAILABLE
  t.equal(answer.status, spec.status)
  t.match(answer.headers.get('content-type'), /^text\/html/, 'a page, not JSON')
  t.match(answer.text, /<!doctype html>/)
  t.match(answer.text, spec.message, "the catalogue's message, in words")
  t.match(answer.text, /href="\/auth\/login\?returnTo=%2F"/, 'and a way to sign in again')
  t.equal(answer.headers.get('retry-after'), String(spec.retryAfter), 'Retry-After from the catalogue')
  t.match(answer.headers.get('content-security-policy'), /default-src 'none'/, 'the page is inert')
  t.equal(answer.headers.get('cache-control'), 'no-store')
  t.equal(answer.headers.get('x-content-type-options'), 'nosniff')
})
