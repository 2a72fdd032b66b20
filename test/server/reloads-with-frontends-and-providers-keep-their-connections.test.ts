import { Redis } from 'ioredis'
import t from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { startTwoFrontends } from '../helpers/two-frontends.js'

const RELOADS = 50
/** Reloads before the first count: IdP clients made again, keep-alive sockets opened, pools warmed. */
const WARM_UP = 10
/**
 * Sockets that may come and go between two counts without a leak: the
 * test's own keep-alive connections, to the gateway and to the IdPs it
 * shares this process with. A leak of one per reload would be 40.
 */
const SOCKET_SLACK = 4

/**
 * config-reloads-leak-nothing.test.ts counts the heap of one provider on
 * the memory store. Here every reload of two frontends, over two providers
 * and one Redis, makes a new app, its routes' upstream pools and every
 * other time a frontend's providers anew: the Redis connections stay those
 * the process opened at start, the open sockets and servers stay as many,
 * and /metrics as long.
 */
t.test(
  `${RELOADS} reloads of two frontends over two providers and Redis open no connection they leave open`,
  async (t) => {
    const redis = await startRedis()
    t.teardown(() => redis.stop())
    const probe = new Redis(redis.url)
    t.teardown(() => probe.quit())
    const choices = (n: number) => (upstream: string) => ({
      staff: {
        identityProviders: (n % 2 === 0 ? ['corp', 'partner'] : ['corp']) as ('corp' | 'partner')[],
        routes: [route('/api', upstream, { timeout: 5_000 + n })],
      },
      partners: { identityProviders: ['partner' as const], routes: [route('/api', upstream)] },
    })
    const s = await startTwoFrontends(t, choices(0), {
      config: { store: redis.url, keyPrefix: redis.prefix },
    })
    const { jar } = await login(s.staff)
    const count = async () => {
      const resources: Record<string, number> = {}
      for (const kind of process.getActiveResourcesInfo()) resources[kind] = (resources[kind] ?? 0) + 1
      return {
        redisClients: String(await probe.client('LIST'))
          .trim()
          .split('\n').length,
        sockets: resources.TCPSocketWrap ?? 0,
        servers: resources.TCPServerWrap ?? 0,
        // The gateway's own series: the runtime's (active resources by type,
        // heap spaces) come and go with what the process happens to be doing.
        metricsLines: (await (await fetch(s.running.metricsUrl!)).text())
          .split('\n')
          .filter((line) => !/^(# \w+ )?gatehouse_(nodejs|process)_/.test(line)).length,
      }
    }
    let before: Awaited<ReturnType<typeof count>> | undefined
    for (let n = 1; n <= RELOADS; n++) {
      const reloaded = await s.reload(choices(n))
      if (reloaded.result !== 'applied') t.fail(`reload ${n}: ${reloaded.result}`)
      const answered = await apiCall(jar, `${s.staff}/api/x`)
      if (answered.status !== 200) t.fail(`after reload ${n} the session's route answered ${answered.status}`)
      if (n === WARM_UP) before = await count()
    }
    const after = await count()
    t.equal(after.redisClients, before!.redisClients, 'no Redis connection more')
    t.equal(after.servers, before!.servers, 'no listening server more')
    t.ok(
      after.sockets <= before!.sockets + SOCKET_SLACK,
      `open sockets ${before!.sockets} then ${after.sockets} (slack ${SOCKET_SLACK})`,
    )
    t.ok(
      after.metricsLines <= before!.metricsLines,
      `/metrics no longer: ${before!.metricsLines} then ${after.metricsLines} lines`,
    )
  },
)
