import type { AddressInfo } from 'node:net'
import t from 'tap'
import { buildGateway } from '../../src/server/gateway.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { jarFetch } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { startTwoFrontends } from '../helpers/two-frontends.js'

/**
 * The sign-in rate limit counts per route, and each frontend's sign-in
 * routes are its own: in memory they always were. Through Redis the
 * counters were named by method and path alone, so two frontends on two
 * hosts with the same `auth.basePath` (`/auth`, the default) spent one
 * budget: a client's sign-ins at one locked it out of the other's.
 */
const redis = await startRedis()
t.teardown(() => redis.stop())

t.test("with the Redis store one frontend's sign-ins spend none of another's budget", async (t) => {
  const { staff, partners, running } = await startTwoFrontends(
    t,
    () => ({ staff: { routes: [] }, partners: { routes: [] } }),
    { config: { store: redis.url, keyPrefix: `${redis.prefix}budget:`, rateLimitMax: 3 } },
  )
  const login = async (origin: string) => (await jarFetch(new CookieJar(), `${origin}/auth/login`)).status
  for (let i = 0; i < 3; i++) t.equal(await login(partners), 302, `partners sign-in ${i + 1}`)
  t.equal(await login(partners), 429, "partners' budget is spent")
  t.equal(await login(staff), 302, "staff's, on the same path, is not")

  // A second instance sharing the store: each frontend's budget is still one for both.
  const second = await buildGateway({ ...running.config, server: { ...running.config.server, port: 0 } })
  t.teardown(() => second.close())
  await second.listen({ host: '127.0.0.1', port: 0 })
  await second.gatehouse.whenDiscovered()
  const port = (second.server.address() as AddressInfo).port
  t.equal(await login(`http://localhost:${port}`), 429, "partners' spent budget holds on the other instance")
  t.equal(await login(`http://127.0.0.1:${port}`), 302, "staff's second sign-in, on the other instance")
  t.equal(await login(staff), 302, "staff's third")
  t.equal(await login(`http://127.0.0.1:${port}`), 429, "staff's budget is shared by both instances too")
})
