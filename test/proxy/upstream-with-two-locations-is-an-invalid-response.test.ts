import t from 'tap'
import { gatewayOnBothReplyPaths } from '../helpers/both-reply-paths.js'
import { lastSegment, NOT_FOUND, rawUpstream } from '../helpers/http-server.js'

/*
 * A redirect with two `Location` fields (RFC 9110 §10.2.2: one URI) came
 * to the redirect mapping as an array, which threw there: the browser got
 * 502 upstream_unreachable, and the log a TypeError for an upstream that
 * was up. A status Fastify cannot send (600 to 999, which llhttp reads)
 * was refused as unreachable too.
 */

const ANSWERS: Record<string, string> = {
  twice: 'HTTP/1.1 302 Found\r\nLocation: /a\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n',
  status: 'HTTP/1.1 600 Beyond\r\nContent-Length: 2\r\n\r\nok',
}

t.test('a redirect with two Locations is 502 upstream_invalid_response on both reply paths', async (t) => {
  const upstream = await rawUpstream(t, (path) => ANSWERS[lastSegment(path)] ?? NOT_FOUND)
  const gateway = await gatewayOnBothReplyPaths(t, upstream.url)
  const cases: [path: string, cookie: string | undefined][] = [
    ['/pub/twice', undefined],
    ['/maybe/twice', gateway.staleCookie],
    ['/maybe/status', gateway.staleCookie],
  ]
  for (const [path, cookie] of cases) {
    const res = await fetch(`${gateway.base}${path}`, {
      redirect: 'manual',
      headers: cookie ? { cookie } : {},
    })
    t.equal(res.status, 502, path)
    t.equal(((await res.json()) as { error: string }).error, 'upstream_invalid_response', path)
  }
})
