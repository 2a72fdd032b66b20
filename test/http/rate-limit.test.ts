import type { AddressInfo } from 'node:net'
import t from 'tap'
import { buildGateway } from '../../src/server/gateway.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { jarFetch } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { startStack } from '../helpers/stack.js'

t.test('login and callback are rate limited per client IP, with Retry-After', async (t) => {
  const stack = await startStack(t, { config: { rateLimitMax: 3 } })
  const url = `${stack.gateway.url}/auth/login`
  for (let i = 0; i < 3; i++) t.equal((await jarFetch(new CookieJar(), url)).status, 302)
  const limited = await jarFetch(new CookieJar(), url)
  t.equal(limited.status, 429)
  // A browser navigation: the catalogue's message as a page, not JSON.
  t.match(limited.headers.get('content-type'), /^text\/html/)
  t.match(limited.text, /Too many sign-in attempts from this address/)
  t.ok(Number(limited.headers.get('retry-after')) > 0, 'Retry-After is set')
  const callback = `${stack.gateway.url}/auth/callback?code=x&state=y`
  for (let i = 0; i < 3; i++) t.equal((await jarFetch(new CookieJar(), callback)).status, 400)
  t.equal((await jarFetch(new CookieJar(), callback)).status, 429, 'the callback has a budget too')
  t.equal(
    (await jarFetch(new CookieJar(), `${stack.gateway.url}/healthz`)).status,
    200,
    'other routes are not limited',
  )
})

t.test('with the Redis store the budget is shared by every instance', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const stack = await startStack(t, {
    config: { rateLimitMax: 4, store: redis.url, keyPrefix: redis.prefix },
  })
  // A second instance behind the same origin: it keeps the first's publicUrl, so its own port can be any.
  const second = await buildGateway({ ...stack.config, server: { ...stack.config.server, port: 0 } })
  t.teardown(() => second.close())
  await second.listen({ host: '127.0.0.1', port: 0 })
  await second.gatehouse.whenDiscovered()
  const urls = [stack.gateway.url, `http://127.0.0.1:${(second.server.address() as AddressInfo).port}`]
  for (let i = 0; i < 4; i++)
    t.equal((await jarFetch(new CookieJar(), `${urls[i % 2]}/auth/login`)).status, 302)
  t.equal((await jarFetch(new CookieJar(), `${urls[0]}/auth/login`)).status, 429)
  t.equal((await jarFetch(new CookieJar(), `${urls[1]}/auth/login`)).status, 429)
})
