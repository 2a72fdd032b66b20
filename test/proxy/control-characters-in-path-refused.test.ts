import type { IncomingMessage, ServerResponse } from 'node:http'
import t from 'tap'
import { upstreamReadsPathAsWeDo } from '../../src/proxy/path-check.js'
import { listeningTestApp } from '../helpers/app.js'
import { route } from '../helpers/gateway.js'
import { serveHttp } from '../helpers/http-server.js'
import { rawCall } from '../helpers/scripted-upstream.js'

/**
 * Node refuses a control byte in a request line, but not its escape, which
 * went upstream as sent: an upstream in C, or one that opens a file by the
 * path, ends the path at a decoded NUL (`/api/admin%00/x` is `/api/admin`
 * there, another route's path), and one that writes the decoded path into a
 * header or a log line writes the CR LF of `%0d%0a` with it.
 */
const CONTROLS = [
  '/api/admin%00/x',
  '/api/file%00.png',
  '/api/x%0d%0aSet-Cookie:%20a=b',
  '/api/x%0A',
  '/api/x%09y',
  '/api/x%1f',
  '/api/x%7F',
  '/api/x%2500',
  '/api/x%252500',
  '/%00',
]

t.test('a path with an escaped control character is refused on every route, sent nowhere', async (t) => {
  const seen: string[] = []
  const upstream = await serveHttp(t, (req: IncomingMessage, res: ServerResponse) => {
    seen.push(`${req.url}`)
    res.end()
  })
  const { url } = await listeningTestApp(t, {
    routes: [
      route('/api/admin', upstream, { token: 'none' }),
      route('/api', upstream, { token: 'none' }),
      route('/', upstream, { token: 'none', csrf: false }),
    ],
  })
  for (const path of CONTROLS) {
    const res = await rawCall(`${url}/`, {}, { path })
    t.equal(res.status, 400, path)
    t.match(res.body.toString(), /"error":"invalid_path"/, path)
    t.notOk(upstreamReadsPathAsWeDo(path), `${path}: the rule on its own`)
  }
  t.same(seen, [], 'no upstream saw any of them')
  for (const path of ['/api/x%20y', '/api/x%C2%A0y', '/api/x?q=%00']) {
    const res = await rawCall(`${url}/`, {}, { path })
    t.equal(res.status, 200, `${path}: no control character in the path`)
  }
  t.same(seen, ['/api/x%20y', '/api/x%C2%A0y', '/api/x?q=%00'], 'those reached the upstream as sent')
})
