/**
 * A back-channel logout that comes while Redis is full (`noeviction`,
 * every write answered `OOM`) cannot note its token as used, so it is not
 * carried out then: the IdP is answered 503, and the gateway, which
 * oidc-provider and Keycloak never resend to, owes it and carries it out
 * once Redis takes writes again, ending the user's sessions and no other.
 */
import { Redis } from 'ioredis'
import t from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { startStack } from '../helpers/stack.js'
import { pollUntil } from '../helpers/within.js'

t.test('a logout token that came while Redis was full is carried out once it has room', async (t) => {
  const redis = await startRedis({ args: ['--maxmemory-policy', 'noeviction'] })
  t.teardown(() => redis.stop())
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const lines: Record<string, unknown>[] = []
  const { idp, gateway } = await startStack(t, {
    accessTokenTtl: 600,
    backchannelLogout: true,
    routes: (upstream) => [route('/api/orders', upstream)],
    config: { store: redis.url, keyPrefix: redis.prefix, logLevel: 'info' },
    gateway: { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
  })
  const base = gateway.url
  const alice = await login(base, { user: 'alice' })
  const bob = await login(base, { user: 'bob' })

  await admin.config('SET', 'maxmemory', '1')
  const delivery = await idp.endSession('alice')
  t.same(
    { delivered: delivery.delivered, failed: delivery.failed },
    { delivered: 0, failed: 1 },
    'the IdP was answered with an error, and will not send the token again',
  )
  t.match(
    lines.find((line) => line.code === 'GATEHOUSE_BACKCHANNEL_LOGOUT_OWED'),
    { level: 40 },
    'the operator hears that a logout waits for the store',
  )
  t.match(
    lines.find((line) => line.code === 'GATEHOUSE_ERR_STORE_UNAVAILABLE'),
    { cause: /^Redis answered OOM: / },
    'and why',
  )

  await admin.config('SET', 'maxmemory', '0')
  await pollUntil(async () => (await apiCall(alice.jar, `${base}/api/orders`)).status === 401)
  t.pass("alice's session ended once Redis had room, with no resend")
  t.equal((await apiCall(bob.jar, `${base}/api/orders`)).status, 200, "bob's session stays")
  t.notOk(
    lines.some((line) => /eyJ/.test(JSON.stringify(line))),
    'no token in the log',
  )
})
