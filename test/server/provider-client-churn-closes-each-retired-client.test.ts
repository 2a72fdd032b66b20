/**
 * Probe: 50 reloads that alternate provider a's entry (its scopes) with
 * DPoP on and the IdP asking for nonces. Each makes a new client for a,
 * started from the running one's document, and retires the one before
 * once the app holding it has closed. Counted: the sockets the process
 * holds after the churn against before it; the retired clients and DPoP
 * proof caches still reachable (HeldKeys holds a cache until its client
 * closes: with the pool's close left out, all 98 stay); and whether a
 * session signed in before the churn, and one at b (whose client stays),
 * still refresh with their DPoP keys, nothing spent twice.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { configText, startReloadable } from '../helpers/reloadable.js'
import { until } from '../helpers/websocket.js'

const RELOADS = 50

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

function resources(): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1
  return counts
}

t.test(
  `${RELOADS} reloads alternating a provider's entry leave no client, proof cache or socket behind`,
  async (t) => {
    const clock = new TestClock()
    const stack = await startReloadable(t, (upstream) => [route('/api/orders', upstream)], {
      watch: false,
      now: clock.now,
      idp: { dpopNonce: true },
      second: { dpopNonce: true },
      input: (issuer, second) => ({
        oidc: { dpop: true },
        identityProviders: [
          { name: 'a', issuer },
          { name: 'b', issuer: second },
        ],
      }),
    })
    const { running, url, idp, configMap } = stack
    const idpB = stack.second!
    const baseScopes = running.config.identityProviders[0]!.scopes
    const withA = (n: number) =>
      configText({
        ...stack.input,
        identityProviders: [
          { name: 'a', issuer: idp.issuer, ...(n % 2 === 1 ? { scopes: [...baseScopes, 'email'] } : {}) },
          { name: 'b', issuer: idpB.issuer },
        ],
      })

    const atA = await login(url, { params: { idp: 'a' } })
    const atB = await login(url, { params: { idp: 'b' } })
    t.equal((await apiCall(atA.jar, `${url}/api/orders`)).status, 200)
    t.equal((await apiCall(atB.jar, `${url}/api/orders`)).status, 200)
    const clientB = running.app.gatehouse.providers.get('b')!

    // Warm up: one pair of reloads makes what is made once.
    for (const n of [1, 2]) {
      configMap.write(withA(n))
      t.equal((await running.reload()).result, 'applied')
    }
    const before = resources()
    const clientsOfA = new Set<object>()
    /** Each retired client of a, and its DPoP proof cache (which HeldKeys holds until the client closes). */
    const retired: WeakRef<object>[] = []
    for (let n = 3; n < 3 + RELOADS; n++) {
      configMap.write(withA(n))
      const result = await running.reload()
      if (result.result !== 'applied') t.fail(`reload ${n}: ${JSON.stringify(result)}`)
      const clientA = running.app.gatehouse.providers.get('a')!
      clientsOfA.add(clientA)
      if (n < 2 + RELOADS) retired.push(new WeakRef(clientA), new WeakRef(clientA.dpopProofs))
      if ((await apiCall(atA.jar, `${url}/auth/user`)).status !== 200) t.fail(`reload ${n}: session at a`)
    }
    t.equal(clientsOfA.size, RELOADS, 'each reload made a new client for a')
    clientsOfA.clear()
    t.equal(running.app.gatehouse.providers.get('b'), clientB, "b's client is kept through them all")
    // A retired app closes once its last exchange is answered, after its reload resolves.
    await until(() => (resources().TCPSocketWrap ?? 0) <= (before.TCPSocketWrap ?? 0))
    const after = resources()
    t.comment(`before ${JSON.stringify(before)} after ${JSON.stringify(after)}`)
    t.ok(
      (after.TCPSocketWrap ?? 0) <= (before.TCPSocketWrap ?? 0) + 2,
      `sockets: ${before.TCPSocketWrap} before, ${after.TCPSocketWrap} after`,
    )
    gc()
    gc()
    const alive = retired.filter((ref) => ref.deref() !== undefined).length
    t.equal(alive, 0, `of ${retired.length} retired clients and their proof caches, none is held`)

    const spentA = idp.stats.refreshGrants
    const spentB = idpB.stats.refreshGrants
    clock.advance(120_000)
    t.equal(
      (await apiCall(atA.jar, `${url}/api/orders`)).status,
      200,
      "a's session refreshes on a's newest client",
    )
    t.equal(
      (await apiCall(atB.jar, `${url}/api/orders`)).status,
      200,
      "b's session refreshes on its kept client",
    )
    t.equal(idp.stats.refreshGrants, spentA + 1)
    t.equal(idpB.stats.refreshGrants, spentB + 1)
    t.equal(idp.stats.dpopTokenRequests, idp.stats.tokenRequests, 'every token request at a with a proof')
    t.equal(idp.stats.refreshReplays + idpB.stats.refreshReplays, 0, 'no refresh token spent twice')
    t.equal(idp.stats.revokedGrants + idpB.stats.revokedGrants, 0, 'no grant revoked')
  },
)
