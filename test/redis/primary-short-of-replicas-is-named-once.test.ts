import t from 'tap'
import { apiCall, login } from '../helpers/login.js'
import { type LogLine, signedInOnItsOwnRedis } from '../helpers/observed-stack.js'
import { pollUntil } from '../helpers/within.js'

interface Readiness {
  status: string
  checks: Record<string, string>
}

t.test('a primary short of its replicas: named once, /readyz degraded (200), the session kept', async (t) => {
  const { admin, stack, base, jar } = await signedInOnItsOwnRedis(t)
  const short = (line: LogLine) => line.code === 'GATEHOUSE_STORE_SHORT_OF_REPLICAS'

  await admin.config('SET', 'min-replicas-to-write', '1')
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'a session with a fresh token is served')
  // A check younger than a second answers /readyz: poll until one sees the change.
  let body: Readiness | undefined
  await pollUntil(async () => {
    const ready = await fetch(`${base}/readyz`)
    body = (await ready.json()) as Readiness
    return ready.status === 200 && body.status === 'degraded'
  })
  t.equal(
    body?.status,
    'degraded',
    '/readyz stays 200, degraded: reads serve, and every instance shares Redis',
  )
  t.match(body?.checks.store, /refuses writes \(NOREPLICAS\).*min-replicas-to-write/, 'naming the cause')
  t.equal((await login(base)).callback.status, 503, 'a sign-in answers 503')
  for (let i = 0; i < 5; i++) await fetch(`${base}/readyz`)
  const lines = stack.lines.filter(short)
  t.equal(lines.length, 1, 'one line, however many probes and requests met it')
  t.match(lines[0], { level: 40, node: /^127\.0\.0\.1:\d+$/, msg: /NOREPLICAS.*min-replicas-to-write/ })
  t.ok(
    (await stack.metrics('gatehouse_redis_refusing')).includes(
      'gatehouse_redis_refusing{refusal="replicas"} 1',
    ),
    'the gauge has a series for it',
  )

  await admin.config('SET', 'min-replicas-to-write', '0')
  await pollUntil(
    async () => ((await (await fetch(`${base}/readyz`)).json()) as Readiness).status === 'ready',
  )
  t.match(
    stack.lines.filter((line) => line.code === 'GATEHOUSE_STORE_REFUSAL_OVER'),
    [{ refusal: 'replicas' }],
    'and says once that it is over',
  )
  t.equal((await login(base)).callback.status, 302, 'sign-ins work again')
  t.equal(stack.lines.filter(short).length, 1, 'still one line')
})
