import type { ServerResponse } from 'node:http'
import t from 'tap'
import { gatewayOnBothReplyPaths, getWithHints } from '../helpers/both-reply-paths.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'

/*
 * RFC 7838 §9.1: "an attacker that can add HTTP response header fields to
 * some pages can redirect traffic for an entire origin to a different port
 * on the same host using the Alt-Svc header field". An upstream's answer
 * on one route carried its `Alt-Svc` to the browser as the gateway's
 * origin's: for its `ma` (here a year, kept across networks), the browser
 * would take its requests for the whole origin, every route's and the
 * session cookie with them, to the endpoint the upstream named, wherever
 * that endpoint shows a certificate for the gateway's host.
 */

const MOVE = 'h3="attacker.example:443"; ma=31536000; persist=1, h2=":443"; ma=31536000'

/** An answer, with the headers this test reads. */
async function get(url: string, headers: Record<string, string> = {}) {
  const answer = await getWithHints(url, headers)
  return {
    ...answer,
    altSvc: answer.headers['alt-svc'],
    kept: answer.headers['x-kept'],
    hintAltSvc: answer.informational.map((hint) => hint.headers['alt-svc']),
  }
}

t.test(
  "an upstream's Alt-Svc never reaches the browser, on either answer path or in early hints",
  async (t) => {
    const upstream = await scriptedUpstream()
    t.teardown(() => upstream.close())
    const { base, staleCookie } = await gatewayOnBothReplyPaths(t, upstream.url)
    upstream.answer((res: ServerResponse) => {
      res.writeEarlyHints({ link: '</app.css>; rel=preload; as=style', 'alt-svc': MOVE })
      res.writeHead(200, { 'alt-svc': MOVE, 'content-type': 'text/plain', 'x-kept': '1' }).end('answer')
    })
    for (const [name, url, headers] of [
      ['hijacked reply', `${base}/pub/x`, {}],
      ["Fastify's send (a stale cookie is cleared)", `${base}/maybe/x`, { cookie: staleCookie }],
    ] as const) {
      const answer = await get(url, headers)
      t.equal(answer.status, 200, `${name}: the answer arrives`)
      t.equal(answer.body, 'answer', `${name}: whole`)
      t.equal(answer.altSvc, undefined, `${name}: without the upstream's Alt-Svc`)
      t.equal(answer.kept, '1', `${name}: its other headers pass`)
      t.same(answer.hintAltSvc, [undefined], `${name}: its early hint arrives, without Alt-Svc`)
    }
    t.equal(upstream.seen.length, 2, 'both requests reached the upstream')
  },
)
