import type { AddressInfo } from 'node:net'
import t from 'tap'
import { SESSION_SECRET } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

const NEW_SECRET = 'a-brand-new-session-secret-of-32-chars-or-more'

t.test(
  'secrets: [new, old] opens cookies sealed with the old key and re-seals them with the new one',
  async (t) => {
    const store = (await import('../../src/session/memory-store.js')).MemorySessionStore
    const sessions = new store({ idleTimeoutMs: 30 * 60_000 })
    const shared = {
      sessions,
      locks: new (await import('../../src/tokens/memory-lock.js')).MemoryLockService(),
      replay: new (await import('../../src/tokens/replay-cache.js')).MemoryReplayCache(),
      cooldowns: new (await import('../../src/tokens/refresh-cooldown.js')).MemoryRefreshCooldowns(),
      close: async () => {},
    }
    // Before the rotation: one secret.
    const before = await startStack(t, {
      config: { secrets: [SESSION_SECRET] },
      gateway: { stores: shared },
    })
    const base = before.gateway.url
    const { jar } = await login(base)
    const oldCookie = jar.get(base, 'gatehouse')!
    await before.gateway.close()

    // After: the new secret first, the old one still accepted. The same store;
    // a port of its own (what the browser would see as the same origin: the cookie goes along).
    const { buildGateway } = await import('../../src/server/gateway.js')
    const restart = async (secrets: string[]) => {
      const app = await buildGateway(
        {
          ...before.config,
          server: { ...before.config.server, port: 0 },
          session: { ...before.config.session, secrets },
        },
        { stores: shared },
      )
      t.teardown(() => app.close())
      await app.listen({ host: '127.0.0.1', port: 0 })
      await app.gatehouse.whenDiscovered()
      const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
      return { app, url }
    }
    const rotated = await restart([NEW_SECRET, SESSION_SECRET])
    jar.set(rotated.url, 'gatehouse', oldCookie)
    const first = await apiCall(jar, `${rotated.url}/auth/user`)
    t.equal(first.status, 200, 'the old cookie still opens')
    const resealed = jar.get(rotated.url, 'gatehouse')!
    t.not(resealed, oldCookie, 'and comes back re-sealed')

    // Only the new key now: the re-sealed cookie opens, the old one does not.
    await rotated.app.close()
    const only = await restart([NEW_SECRET])
    jar.set(only.url, 'gatehouse', resealed)
    t.equal(
      (await apiCall(jar, `${only.url}/auth/user`)).status,
      200,
      'the re-sealed cookie opens with the new key alone',
    )
    jar.set(only.url, 'gatehouse', oldCookie)
    t.equal((await apiCall(jar, `${only.url}/auth/user`)).status, 401, 'the old seal no longer does')
  },
)
