import t from 'tap'
import type { DevIdp } from '../../dev/idp.js'
import { KEY_IDLE_MS } from '../../src/dpop/key-cache.js'
import type { DpopKey } from '../../src/types.js'
import { sessionRefOf } from '../helpers/app.js'
import { boundTo } from '../helpers/dpop.js'
import { DpopVerifier, startDpopUpstream } from '../helpers/dpop-resource-server.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { startReplicaSet } from '../helpers/replicas.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

/**
 * Issue 22: a replica that did not see a logout cannot drop the key then;
 * it drops it once the key has gone unused for `KEY_IDLE_MS`, so an ended
 * session's key outlives it by no more than that (and the sweep's period)
 * anywhere. A session still signed in that comes back later is served as
 * before, its key made ready again.
 */
t.test('a replica that did not see the logout drops the key once unused for the bound', async (t) => {
  const clock = new TestClock()
  let idp: DevIdp | undefined
  const dpopUpstream = await startDpopUpstream(new DpopVerifier((token) => boundTo(idp!, token)))
  t.teardown(() => dpopUpstream.close())
  const set = await startReplicaSet({
    store: redis.url,
    keyPrefix: `${redis.prefix}idle-keys:`,
    accessTokenTtl: 3_600,
    now: clock.now,
    count: 2,
    upstream: dpopUpstream.url,
    oidc: { dpop: true },
    client: { dpopBoundAccessTokens: true },
  })
  t.teardown(() => set.close())
  idp = set.idp
  const [a, b] = set.urls as [string, string]
  const [appA, appB] = set.apps
  const keysA = appA!.gatehouse.lasting.dpopKeys
  const keysB = appB!.gatehouse.lasting.dpopKeys
  const keyOf = async (cookie: string): Promise<DpopKey> => {
    const ref = sessionRefOf(appA!, cookie)
    const session = await appA!.gatehouse.stores.sessions.get(ref, clock.now(), { touch: false })
    return session!.dpopKey!
  }

  // Alice is the set's user; Bob signs in at the first replica too, and is
  // served by the second, as a load balancer would send him.
  const alice = set.jar
  const bob = (await login(a, { user: 'bob' })).jar
  bob.set(b, 'gatehouse', bob.get(a, 'gatehouse')!)
  for (const [jar, url] of [
    [alice, a],
    [alice, b],
    [bob, b],
  ] as const) {
    t.equal((await apiCall(jar, `${url}/api/orders`)).status, 200)
  }
  const aliceKey = await keyOf(alice.get(a, 'gatehouse')!)
  const bobKey = await keyOf(bob.get(a, 'gatehouse')!)
  t.ok(keysB.holds(aliceKey), "the second replica holds alice's key ready")

  const user = (await apiCall(alice, `${a}/auth/user`)).json() as { logoutUrl: string }
  t.ok((await jarFetch(alice, `${a}${user.logoutUrl}`)).status < 400, 'alice logs out at the first replica')
  t.notOk(keysA.holds(aliceKey), 'which drops her key at once')
  t.ok(keysB.holds(aliceKey), 'the second did not see it, and still holds the key')

  clock.advance(KEY_IDLE_MS - 60_000)
  t.equal((await apiCall(bob, `${b}/api/orders`)).status, 200, 'bob is served a minute before the bound')
  keysB.dropIdle()
  t.ok(keysB.holds(aliceKey), 'before the bound, the key is kept')

  clock.advance(60_000)
  keysB.dropIdle()
  t.notOk(keysB.holds(aliceKey), 'unused for the bound, it is dropped: no sleeping, the clock moved')
  t.ok(keysB.holds(bobKey), "bob's key, used since, stays")

  clock.advance(KEY_IDLE_MS)
  keysB.dropIdle()
  t.notOk(keysB.holds(bobKey), "and once bob's has gone unused as long, it goes too")
  const back = await apiCall(bob, `${b}/api/orders`)
  t.equal(back.status, 200, 'bob, still signed in, is served when he comes back')
  t.match(
    dpopUpstream.verdicts.at(-1),
    { ok: true, scheme: 'DPoP' },
    'with a proof the resource server accepts',
  )
  t.ok(keysB.holds(bobKey), 'his key ready again')
})
