import t from 'tap'
import { listeningTestApp } from '../helpers/app.js'
import { route } from '../helpers/gateway.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'

/*
 * An upstream's redirect is mapped from its path back under the route's
 * public prefix. The prefix was matched as text, not as path segments:
 * `/v1x/a` became `/api/pubx/a`, another route's path; the root route's
 * `/v1` became an empty Location; and a redirect the upstream wrote with
 * its own origin (frameworks build it from Host, which is the upstream's)
 * sent the browser to the internal address, where nginx's `proxy_redirect
 * default` would have mapped it.
 */

t.test(
  "an upstream's redirect is mapped under its route by whole path segments, its own origin included",
  async (t) => {
    const upstream = await scriptedUpstream()
    t.teardown(() => upstream.close())
    const { url: base } = await listeningTestApp(t, {
      routes: [
        route('/api/pub', upstream.url, { token: 'none', csrf: false, rewritePath: '/v1' }),
        route('/', upstream.url, { token: 'none', csrf: false, rewritePath: '/v1' }),
      ],
    })
    const own = upstream.url
    const cases: [path: string, from: string, to: string][] = [
      ['/api/pub/go', '/v1/items/2', '/api/pub/items/2'],
      ['/api/pub/go', '/v1?page=2', '/api/pub?page=2'],
      ['/api/pub/go', '/v1x/items', '/v1x/items'],
      ['/api/pub/go', `${own}/v1/items/2?q=1`, '/api/pub/items/2?q=1'],
      ['/api/pub/go', `${own}/v1`, '/api/pub'],
      ['/api/pub/go', `${own}/other`, `${own}/other`],
      ['/api/pub/go', `${own}x/v1/items`, `${own}x/v1/items`],
      ['/api/pub/go', 'https://elsewhere.example/v1/x', 'https://elsewhere.example/v1/x'],
      ['/go', '/v1', '/'],
      ['/go', '/v1/items', '/items'],
    ]
    for (const [path, from, to] of cases) {
      upstream.answer((res) => res.writeHead(302, { location: from }).end())
      const res = await fetch(`${base}${path}`, { redirect: 'manual' })
      t.equal(res.status, 302)
      t.equal(res.headers.get('location'), to, `${path}: ${from}`)
    }
  },
)

/*
 * On a root route whose upstream lives under a path, the upstream's
 * `/v1//elsewhere.example/` (a path on its own origin, as a trailing-slash
 * redirect of a request for `/v1//elsewhere.example` writes it) was mapped to
 * `//elsewhere.example/`, which a browser reads as another host: the
 * mapping made an open redirect of a harmless one.
 */
t.test("an upstream's redirect is never mapped to a Location naming another host", async (t) => {
  const upstream = await scriptedUpstream()
  t.teardown(() => upstream.close())
  const { url: base } = await listeningTestApp(t, {
    routes: [route('/', upstream.url, { token: 'none', csrf: false, rewritePath: '/v1' })],
  })
  const own = upstream.url
  const cases: [from: string, to: string][] = [
    ['/v1//elsewhere.example/', '/v1//elsewhere.example/'],
    ['/v1/\\elsewhere.example/', '/v1/\\elsewhere.example/'],
    ['/v1/\t/elsewhere.example/', '/v1/\t/elsewhere.example/'],
    [`${own}/v1//elsewhere.example`, `${own}/v1//elsewhere.example`],
    ['/v1/items//2', '/items//2'],
  ]
  for (const [from, to] of cases) {
    upstream.answer((res) => res.writeHead(301, { location: from }).end())
    const res = await fetch(`${base}/go`, { redirect: 'manual' })
    t.equal(res.status, 301)
    const location = res.headers.get('location')
    t.equal(location, to, JSON.stringify(from))
    t.equal(
      new URL(location!, base).origin,
      new URL(to, base).origin,
      'the browser stays where the upstream sent it',
    )
  }
})
