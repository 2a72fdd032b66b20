import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { awaitedLog } from '../helpers/awaited-log.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { type LogLine, signedInOnItsOwnRedis, startObservedStack } from '../helpers/observed-stack.js'
import { ACL_PASSWORD as PASSWORD, startRedisWithAclUser, ACL_USER as USER } from '../helpers/redis.js'
import { probeClient, startRedisCluster } from '../helpers/redis-topology.js'
import { pollUntil } from '../helpers/within.js'

interface Readiness {
  status: string
  checks: Record<string, string>
}

/**
 * `/readyz` once it answers as `until` wants: it reuses a refusal check
 * for up to a second (a flood of it is no flood of writes to Redis), so a
 * change an operator makes shows within that second, not at once.
 */
async function readyzOnce(
  ask: () => Promise<{ status: number; body: Readiness }>,
  until: (body: Readiness) => boolean,
): Promise<{ status: number; body: Readiness }> {
  let last!: { status: number; body: Readiness }
  await pollUntil(async () => {
    last = await ask()
    return until(last.body)
  }, 5_000)
  return last
}

async function readyzOf(base: string): Promise<{ status: number; body: Readiness }> {
  const answer = await fetch(`${base}/readyz`)
  return { status: answer.status, body: (await answer.json()) as Readiness }
}

t.test('an ACL without scripting: named once, with the user and the commands; /readyz 503', async (t) => {
  const { redis, admin, store } = await startRedisWithAclUser(t, ['~*', '&*', '+@all', '-@scripting'])
  const stack = await startObservedStack(t, { config: { store, keyPrefix: redis.prefix, localCache: 0 } })
  const base = stack.gateway.url
  const refused = (line: LogLine) => line.code === 'GATEHOUSE_STORE_SCRIPTING_REFUSED'

  const ready = await fetch(`${base}/readyz`)
  const body = (await ready.json()) as Readiness
  t.equal(ready.status, 503, '/readyz answers 503: the gateway cannot refresh or sign in safely')
  t.ok(Number(ready.headers.get('retry-after')) >= 1, 'with Retry-After')
  t.equal(body.status, 'not_ready')
  t.match(body.checks.store, /ACL refuses eval, evalsha \(NOPERM\)/, 'naming the commands')
  t.notMatch(
    body.checks.store,
    new RegExp(`${USER}|${redis.port}`),
    'but neither the user nor the node: /readyz is public',
  )

  const signIn = await login(base)
  t.equal(signIn.callback.status, 503, 'a sign-in answers 503')
  t.ok(Number(signIn.callback.headers.get('retry-after')) >= 1, 'with Retry-After')
  for (let i = 0; i < 5; i++) await fetch(`${base}/readyz`)
  const lines = stack.lines.filter(refused)
  t.equal(lines.length, 1, 'one line, however many probes and requests met it')
  t.match(lines[0], {
    level: 50,
    user: USER,
    commands: ['eval', 'evalsha'],
    msg: /ACL user 'gatehouse' may not run eval, evalsha \(NOPERM\) on 127\.0\.0\.1:\d+: .*allow the user \+eval \+evalsha/,
  })
  t.match(await stack.metrics('gatehouse_redis_refusing'), [
    'gatehouse_redis_refusing{refusal="full"} 0',
    'gatehouse_redis_refusing{refusal="keys"} 0',
    'gatehouse_redis_refusing{refusal="replicas"} 0',
    'gatehouse_redis_refusing{refusal="scripting"} 1',
  ])

  await admin.call('ACL', 'SETUSER', USER, '+@scripting')
  const after = await readyzOnce(
    () => readyzOf(base),
    (body) => body.status !== 'not_ready',
  )
  t.equal(after.status, 200, 'ready once the ACL allows scripts, with no restart')
  t.equal(after.body.status, 'ready')
  t.match(
    stack.lines.filter((line) => line.code === 'GATEHOUSE_STORE_REFUSAL_OVER'),
    [{ refusal: 'scripting' }],
    'and says so once',
  )
  t.equal((await login(base)).callback.status, 302, 'sign-ins work again')
  t.notOk(
    stack.lines.some((line) => JSON.stringify(line).includes(PASSWORD)),
    'no line quotes the password',
  )
})

t.test('a full Redis: named once, /readyz degraded (200), the session kept', async (t) => {
  const { admin, stack, base, jar } = await signedInOnItsOwnRedis(t, ['--maxmemory-policy', 'noeviction'])
  const full = (line: LogLine) => line.code === 'GATEHOUSE_STORE_FULL'

  await admin.config('SET', 'maxmemory', '1')
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'a session with a fresh token is served')
  const { status, body } = await readyzOnce(
    () => readyzOf(base),
    (body) => body.checks.store !== 'ok',
  )
  t.equal(status, 200, '/readyz stays 200: every instance shares the full Redis, and reads serve')
  t.equal(body.status, 'degraded')
  t.match(body.checks.store, /refuses writes \(OOM\).*maxmemory/, 'naming OOM and maxmemory')

  stack.clock.advance(61_000)
  const refresh = await apiCall(jar, `${base}/api/orders`)
  t.equal(refresh.status, 503, 'a refresh answers 503')
  t.ok(Number(refresh.headers.get('retry-after')) >= 1, 'with Retry-After')
  const signIn = await login(base)
  t.equal(signIn.callback.status, 503, 'a sign-in answers 503')
  for (let i = 0; i < 5; i++) await fetch(`${base}/readyz`)
  const lines = stack.lines.filter(full)
  t.equal(lines.length, 1, 'one line, however many probes and requests met it')
  t.match(lines[0], { level: 40, node: /^127\.0\.0\.1:\d+$/, msg: /refuses writes \(OOM\).*maxmemory/ })
  t.match(await stack.metrics('gatehouse_redis_refusing'), [
    'gatehouse_redis_refusing{refusal="full"} 1',
    'gatehouse_redis_refusing{refusal="keys"} 0',
    'gatehouse_redis_refusing{refusal="replicas"} 0',
    'gatehouse_redis_refusing{refusal="scripting"} 0',
  ])

  await admin.config('SET', 'maxmemory', '0')
  const roomy = await readyzOnce(
    () => readyzOf(base),
    (body) => body.checks.store === 'ok',
  )
  t.equal(roomy.body.status, 'ready', 'ready once it has room')
  t.match(
    stack.lines.filter((line) => line.code === 'GATEHOUSE_STORE_REFUSAL_OVER'),
    [{ refusal: 'full' }],
    'and says so once',
  )
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'the session was kept, and refreshes')
  t.equal(stack.lines.filter(full).length, 1, 'still one line')

  // Deleting is no write Redis refuses when full (DEL frees memory).
  await admin.config('SET', 'maxmemory', '1')
  const { logoutUrl } = (await apiCall(jar, `${base}/auth/user`)).json<{ logoutUrl: string }>()
  const logout = await jarFetch(jar, `${base}${logoutUrl}`, { headers: { accept: 'text/html' } })
  t.ok(logout.status < 400, `a sign-out while Redis is full is carried out (${logout.status})`)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 401, 'and the session is over')
  await admin.config('SET', 'maxmemory', '0')
})

t.test('on a Cluster: each master is asked, and the full one named', async (t) => {
  const cluster = await startRedisCluster()
  t.teardown(() => cluster.stop())
  const [full, ...others] = cluster.nodes
  const probe = probeClient(full!.port)
  t.teardown(() => probe.disconnect())
  await probe.connect()
  await probe.config('SET', 'maxmemory-policy', 'noeviction', 'maxmemory', '1')
  const log = awaitedLog()
  // Its IdP is unreachable, so /readyz is 503 whatever the store: `checks.store` says what the store is.
  const app = await buildTestApp(
    t,
    { store: cluster.url, keyPrefix: 'gh-refusals:', logLevel: 'info' },
    { logStream: log.logStream },
  )
  const line = await log.logged((l) => l.code === 'GATEHOUSE_STORE_FULL')
  t.match(line, { node: `127.0.0.1:${full!.port}` }, 'the full master is named')
  const readyz = async () => {
    const answer = await app.inject({ url: '/readyz' })
    return { status: answer.statusCode, body: answer.json<Readiness>() }
  }
  t.match((await readyz()).body, { checks: { store: /refuses writes \(OOM\)/ } })
  await probe.config('SET', 'maxmemory', '0')
  // An exact 'ok': t.match of a string only looks for it, and the OOM text has 'tokens' in it.
  const roomy = await readyzOnce(readyz, (body) => body.checks.store === 'ok')
  t.equal(roomy.body.checks.store, 'ok', 'ok once it has room')
  t.equal(log.lines.filter((l) => l.code === 'GATEHOUSE_STORE_FULL').length, 1, 'one line')
  t.same(
    log.lines.filter((l) => /^GATEHOUSE_STORE_(FULL|REFUSAL_OVER)$/.test(String(l.code))).map((l) => l.node),
    [`127.0.0.1:${full!.port}`, `127.0.0.1:${full!.port}`],
    `the masters with room (${others.map((node) => node.port).join(', ')}) are not named`,
  )
})

t.test(
  'an ACL whose key patterns leave out session.keyPrefix: named once, as the keys it refuses, not as scripts or a full Redis; /readyz 503',
  async (t) => {
    // Scripts allowed, and every key but the gateway's: the ACL of another
    // deployment's prefix, or one written before session.keyPrefix changed.
    const { redis, admin, store } = await startRedisWithAclUser(t, ['~another-app:*', '&*', '+@all'])
    const log = awaitedLog()
    // Its IdP is unreachable, so /readyz is 503 whatever the store: `checks.store` says what the store is.
    const app = await buildTestApp(
      t,
      { store, keyPrefix: redis.prefix, localCache: 0, logLevel: 'info' },
      { logStream: log.logStream },
    )
    const line = await log.logged((l) => l.code === 'GATEHOUSE_STORE_KEYS_REFUSED')
    t.match(
      line,
      { level: 50, user: USER, msg: /ACL user 'gatehouse' may not write .*session\.keyPrefix/ },
      'one error line names the user and the prefix to allow',
    )
    t.notOk(
      log.lines.some((l) => /^GATEHOUSE_STORE_(SCRIPTING_REFUSED|FULL)$/.test(String(l.code))),
      'neither scripting nor a full Redis is said',
    )
    const readyz = async () => {
      const answer = await app.inject({ url: '/readyz' })
      return { status: answer.statusCode, body: answer.json<Readiness>() }
    }
    const { body } = await readyz()
    t.match(body.checks.store, /ACL refuses writes to the gateway's keys \(NOPERM\)/, '/readyz says what')
    t.notMatch(
      body.checks.store,
      new RegExp(`${USER}|${redis.port}|${redis.prefix}`),
      'not as whom, where or which prefix',
    )
    const gauge = await app.gatehouse.metrics.registry.getSingleMetricAsString('gatehouse_redis_refusing')
    t.match(gauge, 'gatehouse_redis_refusing{refusal="keys"} 1', 'the gauge says keys')
    t.match(gauge, 'gatehouse_redis_refusing{refusal="scripting"} 0')
    t.match(gauge, 'gatehouse_redis_refusing{refusal="full"} 0')

    await admin.call('ACL', 'SETUSER', USER, `~${redis.prefix}*`)
    const roomy = await readyzOnce(readyz, (body) => body.checks.store === 'ok')
    t.equal(roomy.body.checks.store, 'ok', 'ok once the ACL covers the prefix, with no restart')
    t.match(
      log.lines.filter((l) => l.code === 'GATEHOUSE_STORE_REFUSAL_OVER'),
      [{ refusal: 'keys' }],
      'and says so once',
    )
    t.equal(log.lines.filter((l) => l.code === 'GATEHOUSE_STORE_KEYS_REFUSED').length, 1, 'one line')
    t.notOk(
      log.lines.some((l) => JSON.stringify(l).includes(PASSWORD)),
      'no line quotes the password',
    )
  },
)
