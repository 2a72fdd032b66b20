import t from 'tap'
import { createStores } from '../../src/server/stores.js'
import { ClientTokens } from '../../src/tokens/client-tokens.js'
import { MemoryLockService } from '../../src/tokens/memory-lock.js'
import { testConfig } from '../helpers/gateway.js'

t.test('in memory mode client tokens have one copy: no shared cache besides the local one', async (t) => {
  const stores = await createStores(
    testConfig({ port: 0, issuer: 'http://127.0.0.1:1', routes: [] }),
    Date.now,
  )
  t.teardown(() => stores.close())
  t.equal(stores.clientTokens, undefined)
})

t.test('without a shared cache, one fetch serves every caller until the token is due', async (t) => {
  let now = 1_000_000
  let fetches = 0
  const locks = new MemoryLockService()
  t.teardown(() => locks.close())
  const tokens = new ClientTokens({
    locks,
    // The seam ClientTokens is given; the IdP's side is covered by the client-route tests.
    oidc: {
      clientCredentials: async () => ({ accessToken: `cc-${++fetches}`, expiresAt: now + 60_000 }),
    },
    refreshBefore: 30_000,
    refreshWait: 1_000,
    lockTtl: 1_000,
    now: () => now,
  })
  const first = await Promise.all(Array.from({ length: 50 }, () => tokens.accessToken(['reports'])))
  t.same(new Set(first), new Set(['cc-1']))
  now += 29_999
  t.equal(await tokens.accessToken(['reports']), 'cc-1', 'still fresh')
  now += 1
  t.equal(await tokens.accessToken(['reports']), 'cc-2', 'due: fetched again')
  t.equal(fetches, 2)
})
