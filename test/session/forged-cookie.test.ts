import t from 'tap'
import { startEchoUpstream } from '../../dev/upstream.js'
import { buildTestApp, seedSession } from '../helpers/app.js'
import { route } from '../helpers/gateway.js'

t.test('a forged or tampered session cookie gets a 401', async (t) => {
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  const app = await buildTestApp(t, { routes: [route('/api/orders', upstream.url)] })
  const { cookie: genuine } = await seedSession(app)
  const status = async (cookie: string, url: string) =>
    (await app.inject({ url, headers: { cookie, 'x-csrf': '1' } })).statusCode

  const flipped = genuine.slice(0, 20) + (genuine[20] === 'A' ? 'B' : 'A') + genuine.slice(21)
  t.equal(await status(flipped, '/api/orders'), 401)
  t.equal(await status(flipped, '/auth/user'), 401)
  t.equal(await status('gatehouse=eyJpZCI6ImFkbWluIn0%3B', '/api/orders'), 401)
  t.equal(upstream.requests.length, 0, 'nothing reached the upstream')
  t.equal(await status(genuine, '/api/orders'), 200, 'the genuine cookie still works')
})
