import t from 'tap'
import { gatewayOnBothReplyPaths, getWithHints } from '../helpers/both-reply-paths.js'
import { route } from '../helpers/gateway.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'

/*
 * W3C Service Workers, "Service-Worker-Allowed": a worker's scope may not
 * reach above the path of its script unless the script's answer names a
 * wider one. An upstream behind one route (`/widgets/sw.js`) that sent
 * `Service-Worker-Allowed: /` let a page of its own register a worker for
 * the whole origin: every route's pages and requests, `/auth/*` included,
 * went through its script for as long as the browser kept it registered,
 * long after the upstream was fixed, as a Network Error Logging policy does.
 */

t.test(
  "an upstream's Service-Worker-Allowed never reaches the browser unless its route allows it",
  async (t) => {
    const upstream = await scriptedUpstream()
    t.teardown(() => upstream.close())
    const { base, staleCookie } = await gatewayOnBothReplyPaths(t, upstream.url, {
      routes: [route('/app', upstream.url, { token: 'none', csrf: false, allowServiceWorkerScope: true })],
    })
    upstream.answer((res) => {
      res.writeEarlyHints({ link: '</app.css>; rel=preload; as=style', 'service-worker-allowed': '/' })
      res
        .writeHead(200, { 'service-worker-allowed': '/', 'content-type': 'text/javascript', 'x-kept': '1' })
        .end('self.addEventListener("fetch", () => {})')
    })
    for (const [name, url, headers] of [
      ['hijacked reply', `${base}/pub/sw.js`, {}],
      ["Fastify's send (a stale cookie is cleared)", `${base}/maybe/sw.js`, { cookie: staleCookie }],
    ] as const) {
      const answer = await getWithHints(url, headers)
      t.equal(answer.status, 200, `${name}: the script arrives`)
      t.equal(answer.headers['service-worker-allowed'], undefined, `${name}: without Service-Worker-Allowed`)
      t.equal(answer.headers['x-kept'], '1', `${name}: its other headers pass`)
      t.same(
        answer.informational.map((hint) => hint.headers['service-worker-allowed']),
        [undefined],
        `${name}: its early hint arrives, without it`,
      )
    }
    const allowed = await getWithHints(`${base}/app/assets/sw.js`)
    t.equal(allowed.headers['service-worker-allowed'], '/', 'a route that allows it passes it on')
    t.same(
      allowed.informational.map((hint) => hint.headers['service-worker-allowed']),
      ['/'],
      'in its early hints too',
    )
  },
)
