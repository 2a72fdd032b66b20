import t from 'tap'
import { gatewayOnBothReplyPaths } from '../helpers/both-reply-paths.js'
import { rawCall, scriptedUpstream } from '../helpers/scripted-upstream.js'

/*
 * RFC 9110 §11.7.1: unlike WWW-Authenticate, Proxy-Authenticate applies
 * only to the next outbound client on the response chain, and so does
 * Proxy-Authentication-Info (§11.7.3). The gateway never passed a client's
 * Proxy-Authorization upstream (it is for the hop it is sent to), yet an
 * upstream's 407 challenge, or one of a proxy between the gateway and the
 * upstream, went on to the browser as this origin's, asking it for the
 * credentials of a proxy it does not use.
 */

t.test("an upstream's Proxy-Authenticate and Proxy-Authentication-Info stop at the gateway", async (t) => {
  const upstream = await scriptedUpstream()
  t.teardown(() => upstream.close())
  const { base, staleCookie } = await gatewayOnBothReplyPaths(t, upstream.url)
  upstream.answer((res) => {
    res
      .writeHead(407, {
        'proxy-authenticate': 'Basic realm="corporate proxy"',
        'proxy-authentication-info': 'nextnonce="x"',
        'www-authenticate': 'Bearer',
        'content-type': 'text/plain',
      })
      .end('proxy says no')
  })
  for (const [name, url, headers] of [
    ['hijacked reply', `${base}/pub/x`, {}],
    ["Fastify's send", `${base}/maybe/x`, { cookie: staleCookie }],
  ] as const) {
    const res = await rawCall(url, headers)
    t.equal(res.status, 407, `${name}: the status passes`)
    t.equal(res.body.toString(), 'proxy says no', `${name}: and the body`)
    t.equal(res.headers['proxy-authenticate'], undefined, `${name}: without Proxy-Authenticate`)
    t.equal(res.headers['proxy-authentication-info'], undefined, `${name}: without Proxy-Authentication-Info`)
    t.equal(res.headers['www-authenticate'], 'Bearer', `${name}: the origin's own challenge passes`)
  }
})
