import { createHash } from 'node:crypto'
import t from 'tap'
import { startEchoUpstream } from '../../dev/upstream.js'

const TOKEN = 'an-access-token-that-must-never-be-reflected'

t.test('records the Authorization header in-process and never echoes it', async (t) => {
  const upstream = await startEchoUpstream({
    introspect: async (token) =>
      token === TOKEN
        ? { active: true, sub: 'alice', exp: 1_900_000_000, token_type: 'AccessToken' }
        : { active: false },
  })
  t.teardown(() => upstream.close())

  const response = await fetch(`${upstream.url}/v1/orders?page=2`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, cookie: 'sid=secret-session', 'x-request-id': 'r1' },
    body: '{"item":1}',
  })
  const text = await response.text()
  t.equal(response.status, 200)
  t.notMatch(text, TOKEN, 'the token is not in the body')
  t.notMatch(text, 'secret-session', 'nor is the cookie')
  const body = JSON.parse(text)
  t.match(body, {
    method: 'POST',
    path: '/v1/orders?page=2',
    headers: { authorization: '[present]', cookie: '[present]', 'x-request-id': 'r1' },
    body: '{"item":1}',
    token: {
      present: true,
      length: TOKEN.length,
      fingerprint: createHash('sha256').update(TOKEN).digest('hex').slice(0, 8),
      sub: 'alice',
      exp: 1_900_000_000,
    },
  })
  t.equal(body.token.token_type, undefined)

  t.equal(upstream.requests.length, 1)
  t.match(upstream.requests[0], {
    method: 'POST',
    path: '/v1/orders?page=2',
    authorization: `Bearer ${TOKEN}`,
    body: '{"item":1}',
  })
  t.equal(upstream.requests[0]!.headers.cookie, 'sid=secret-session')

  const anonymous = await (await fetch(`${upstream.url}/public`)).json()
  t.same(anonymous.token, { present: false })
  t.equal(upstream.requests[1]!.authorization, undefined)
  upstream.clear()
  t.equal(upstream.requests.length, 0)
})

t.test('faults on demand: slow, hang, reset', async (t) => {
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())

  let started = Date.now()
  t.equal((await fetch(`${upstream.url}/api/slow?ms=200`)).status, 200)
  t.ok(Date.now() - started >= 180, 'slow?ms= waits')

  await t.rejects(
    fetch(`${upstream.url}/api/hang`, { signal: AbortSignal.timeout(150) }),
    { name: 'TimeoutError' },
    'hang never answers',
  )
  await t.rejects(fetch(`${upstream.url}/api/reset`), { name: 'TypeError' }, 'reset destroys the socket')
  t.same(
    upstream.requests.map((r) => r.path),
    ['/api/slow?ms=200', '/api/hang', '/api/reset'],
    'faulted requests are recorded too',
  )

  const slowEverything = await startEchoUpstream({ delayMs: (r) => (r.path === '/x' ? 150 : 0) })
  t.teardown(() => slowEverything.close())
  started = Date.now()
  await fetch(`${slowEverything.url}/x`)
  t.ok(Date.now() - started >= 130, 'the delayMs option applies per request')
})
