import t from 'tap'
import { startEchoUpstream } from '../../dev/upstream.js'
import { buildTestApp } from '../helpers/app.js'
import { route } from '../helpers/gateway.js'

/**
 * The path each request target reaches the upstream with, or the status it
 * is refused with. The route's prefix is replaced on whole segments and the
 * query passes byte for byte; a target whose rewritten path a URL parser
 * would read as another authority (`//host`) never leaves.
 */
const CASES: readonly (readonly [string, string | number])[] = [
  ['/api', '/'],
  ['/api/', '/'],
  ['/api?x=1&y=%20', '/?x=1&y=%20'],
  ['/api/items', '/items'],
  ['/api/items/', '/items/'],
  ['/api/items?b=2&a=1&a=3', '/items?b=2&a=1&a=3'],
  ['/api/a%2Fb/c', '/a%2Fb/c'],
  ['/api/%E2%82%AC', '/%E2%82%AC'],
  ['/api/items//x', '/items//x'],
  // An escaped prefix is the prefix to the router; what follows it is kept raw.
  ['/%61pi/items', '/items'],
  ['/ap%69/items%2Fx', '/items%2Fx'],
  ['/api//evil.example/x', 400],
  // An escaped slash is data to every parser on the way: it goes as sent.
  ['/api/%2F/evil.example', '/%2F/evil.example'],
  ['/api/items/..;/admin', 400],
  ['/apix', 404],
]

t.test('a route without rewritePath: the upstream sees the path after the prefix', async (t) => {
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  const app = await buildTestApp(t, {
    routes: [route('/api', upstream.url, { token: 'none', csrf: false, rewritePath: '/' })],
  })
  for (const [target, expected] of CASES) {
    const res = await app.inject(target)
    if (typeof expected === 'number') t.equal(res.statusCode, expected, `${target} refused with ${expected}`)
    else {
      t.equal(res.statusCode, 200, `${target} forwarded`)
      t.equal(res.json().path, expected, `${target} reaches the upstream as ${expected}`)
    }
  }
})

t.test(
  'rewritePath replaces the prefix; a double slash after it stays inside the upstream path',
  async (t) => {
    const upstream = await startEchoUpstream()
    t.teardown(() => upstream.close())
    const app = await buildTestApp(t, {
      routes: [
        route('/api/pub', upstream.url, { token: 'none', csrf: false, rewritePath: '/v1' }),
        route('/same', upstream.url, { token: 'none', csrf: false }),
      ],
    })
    for (const [target, expected] of [
      ['/api/pub', '/v1'],
      ['/api/pub/', '/v1/'],
      ['/api/pub?q=1', '/v1?q=1'],
      ['/api/pub/items', '/v1/items'],
      ['/api/pub//cdn.example/x', '/v1//cdn.example/x'],
      ['/same/items?q', '/same/items?q'],
      ['/same', '/same'],
    ] as const) {
      const res = await app.inject(target)
      t.equal(res.statusCode, 200, `${target} forwarded`)
      t.equal(res.json().path, expected, `${target} reaches the upstream as ${expected}`)
    }
  },
)
