import t from 'tap'
import { gatewayOnBothReplyPaths, getWithHints } from '../helpers/both-reply-paths.js'
import { route } from '../helpers/gateway.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'

/*
 * nginx in front of the gateway (the TLS terminator docs/deployment.md
 * describes) honours `X-Accel-Redirect` from whatever it proxies to, by
 * default: it serves the path named in the answer's place, an `internal`
 * location included, which nothing outside can ask for. Apache's
 * mod_xsendfile and lighttpd do the same with a file for `X-Sendfile` and
 * `X-Lighttpd-Send-File`. The front's backend is the gateway, so every
 * route's upstream spoke for it: a `token: none` route's upstream, asked
 * by anyone, could have the front serve its private files or internal
 * locations, or re-run the browser's request, cookie and all, on another
 * route's path with that route's token.
 */

const REDIRECT = {
  'x-accel-redirect': '/internal/invoices/all.pdf',
  'x-sendfile': '/etc/gatehouse/secrets.yaml',
  'x-lighttpd-send-file': '/srv/private/all.pdf',
}

t.test(
  "an upstream's X-Accel-Redirect and X-Sendfile never reach the front unless its route allows them",
  async (t) => {
    const upstream = await scriptedUpstream()
    t.teardown(() => upstream.close())
    const { base, staleCookie } = await gatewayOnBothReplyPaths(t, upstream.url, {
      routes: [
        route('/downloads', upstream.url, { token: 'none', csrf: false, allowInternalRedirect: true }),
      ],
    })
    upstream.answer((res) => {
      res.writeEarlyHints({ link: '</app.css>; rel=preload; as=style', ...REDIRECT })
      res
        .writeHead(200, { ...REDIRECT, 'x-accel-buffering': 'no', 'content-type': 'text/plain' })
        .end('answer')
    })
    for (const [name, url, headers] of [
      ['hijacked reply', `${base}/pub/x`, {}],
      ["Fastify's send (a stale cookie is cleared)", `${base}/maybe/x`, { cookie: staleCookie }],
    ] as const) {
      const answer = await getWithHints(url, headers)
      t.equal(answer.status, 200, `${name}: the answer arrives`)
      t.equal(answer.body, 'answer', `${name}: whole`)
      for (const field of Object.keys(REDIRECT)) {
        t.equal(answer.headers[field], undefined, `${name}: without ${field}`)
        t.same(
          answer.informational.map((hint) => hint.headers[field]),
          [undefined],
          `${name}: its early hint arrives, without ${field}`,
        )
      }
      t.equal(
        answer.headers['x-accel-buffering'],
        'no',
        `${name}: what only tunes the front's buffering passes`,
      )
    }
    const allowed = await getWithHints(`${base}/downloads/x`)
    for (const [field, value] of Object.entries(REDIRECT)) {
      t.equal(allowed.headers[field], value, `a route that allows them passes ${field}`)
    }
    t.equal(upstream.seen.length, 3, 'every request reached the upstream')
  },
)
