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

    // After: the new secret first, the old one still accepted. Same port, same store.
    const { buildGateway } = await import('../../src/server/gateway.js')
    const app = await buildGateway(
      { ...before.config, session: { ...before.config.session, secrets: [NEW_SECRET, SESSION_SECRET] } },
      { stores: shared },
    )
    await app.listen({ host: '127.0.0.1', port: before.config.server.port })
    await app.gatehouse.whenDiscovered()
    t.teardown(() => app.close())

    const first = await apiCall(jar, `${base}/auth/user`)
    t.equal(first.status, 200, 'the old cookie still opens')
    const resealed = jar.get(base, 'gatehouse')!
    t.not(resealed, oldCookie, 'and comes back re-sealed')

    // Only the new key now: the re-sealed cookie opens, the old one does not.
    await app.close()
    const app2 = await buildGateway(
      { ...before.config, session: { ...before.config.session, secrets: [NEW_SECRET] } },
      { stores: shared },
    )
    await app2.listen({ host: '127.0.0.1', port: before.config.server.port })
    await app2.gatehouse.whenDiscovered()
    t.teardown(() => app2.close())
    t.equal(
      (await apiCall(jar, `${base}/auth/user`)).status,
      200,
      'the re-sealed cookie opens with the new key alone',
    )
    jar.set(base, 'gatehouse', oldCookie)
    t.equal((await apiCall(jar, `${base}/auth/user`)).status, 401, 'the old seal no longer does')
  },
)
