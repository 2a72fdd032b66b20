import t from 'tap'
import { gatewayOnBothReplyPaths } from '../helpers/both-reply-paths.js'
import { rawCall, scriptedUpstream } from '../helpers/scripted-upstream.js'

/*
 * RFC 9110 §15: a status code is 100–599, and a client that receives one
 * outside that range treats it as a 5xx. llhttp reads any three digits and
 * Node's writeHead writes up to 999, so an upstream's 600–999 went to the
 * browser as it came on the hijacked reply, while the same answer through
 * Fastify's send was a 502: which one the browser got depended on whether
 * the answer also had a session cookie to clear.
 */

t.test(
  'an upstream status of 600 to 999 is 502 upstream_invalid_response on both answer paths',
  async (t) => {
    const upstream = await scriptedUpstream()
    t.teardown(() => upstream.close())
    const { base, staleCookie } = await gatewayOnBothReplyPaths(t, upstream.url)
    for (const status of [600, 799, 999]) {
      upstream.answer((res) => {
        res.writeHead(status, { 'content-type': 'text/plain', 'x-from-upstream': '1' }).end('odd')
      })
      for (const [name, url, headers] of [
        ['hijacked reply', `${base}/pub/x`, {}],
        ["Fastify's send", `${base}/maybe/x`, { cookie: staleCookie }],
      ] as const) {
        const res = await rawCall(url, headers)
        t.equal(res.status, 502, `${status}, ${name}: a bad gateway`)
        t.match(res.body.toString(), /"error":"upstream_invalid_response"/, `${status}, ${name}: named so`)
        t.equal(res.headers['x-from-upstream'], undefined, `${status}, ${name}: none of the answer passes`)
      }
    }
    upstream.answer((res) => res.writeHead(599).end('edge'))
    const edge = await rawCall(`${base}/pub/x`, {})
    t.equal(edge.status, 599, 'a 599 is a status and passes')
  },
)
