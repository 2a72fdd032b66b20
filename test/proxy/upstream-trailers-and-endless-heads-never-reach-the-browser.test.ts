import t, { type Test } from 'tap'
import { gatewayOnBothReplyPaths } from '../helpers/both-reply-paths.js'
import { route } from '../helpers/gateway.js'
import { NOT_FOUND, rawUpstream } from '../helpers/http-server.js'
import { rawCall } from '../helpers/scripted-upstream.js'

/*
 * Answers no well-behaved upstream sends, on a raw socket. Trailer fields
 * (RFC 9110 §6.5) are never merged into the head the browser already has,
 * and undici hands them to the dispatch only at the end: the gateway writes
 * none, so a `Set-Cookie` of the session cookie's name in a trailer, which
 * the response-header filter never sees, goes nowhere. A head that never
 * ends is bounded by the route's timeout (undici does not restart it for
 * each header line) and by undici's 16 KiB head limit.
 */

const ANSWERS: Record<string, string> = {
  trailers:
    'HTTP/1.1 200 OK\r\nTrailer: Set-Cookie, X-Late\r\nTransfer-Encoding: chunked\r\n\r\n' +
    '6\r\nanswer\r\n0\r\nSet-Cookie: gatehouse=planted; Path=/\r\nX-Late: 1\r\n\r\n',
  'length-and-chunked':
    'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
  'two-lengths': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!',
  'obs-fold': 'HTTP/1.1 200 OK\r\nX-Note: a\r\n gatehouse=planted\r\nContent-Length: 2\r\n\r\nok',
  'bare-lf': 'HTTP/1.1 200 OK\nSet-Cookie: gatehouse=planted\nContent-Length: 2\n\nok',
  nul: 'HTTP/1.1 200 OK\r\nX-Note: a\x00b\r\nContent-Length: 2\r\n\r\nok',
  'space-before-colon': 'HTTP/1.1 200 OK\r\nSet-Cookie : gatehouse=planted\r\nContent-Length: 2\r\n\r\nok',
  overflow: `HTTP/1.1 200 OK\r\n${'X-Pad: 0123456789abcdef0123456789abcdef\r\n'.repeat(600)}Content-Length: 2\r\n\r\nok`,
}

/** A raw upstream: a scripted answer by last path segment, or `endless`, a head dribbled one line every 50 ms. */
async function scriptedUpstream(t: Test): Promise<string> {
  const { url } = await rawUpstream(
    t,
    (path, socket) => {
      const key = path.slice(path.lastIndexOf('/') + 1)
      if (key !== 'endless') return ANSWERS[key] ?? NOT_FOUND
      socket.write('HTTP/1.1 200 OK\r\n')
      const dribble = setInterval(() => socket.write('X-More: 1\r\n'), 50)
      socket.on('close', () => clearInterval(dribble))
      return undefined
    },
    { keepAlive: true },
  )
  return url
}

t.test('trailer fields of an upstream answer never reach the browser, on either answer path', async (t) => {
  const { base, config, staleCookie } = await gatewayOnBothReplyPaths(t, await scriptedUpstream(t))
  for (const [name, url, headers] of [
    ['hijacked reply', `${base}/pub/trailers`, {}],
    ["Fastify's send", `${base}/maybe/trailers`, { cookie: staleCookie }],
  ] as const) {
    const res = await rawCall(url, headers)
    t.equal(res.status, 200, `${name}: the answer arrives`)
    t.equal(res.body.toString(), 'answer', `${name}: whole`)
    t.equal(res.headers.trailer, undefined, `${name}: no Trailer announced`)
    t.equal(res.headers['x-late'], undefined, `${name}: no trailer field in the head`)
    const planted = (res.headers['set-cookie'] ?? []).filter((line) => line.includes('planted'))
    t.same(planted, [], `${name}: the trailer's Set-Cookie nowhere`)
    t.ok(
      name === 'hijacked reply' ||
        (res.headers['set-cookie'] ?? []).some((line) => line.startsWith(`${config.session.cookieName}=;`)),
      `${name}: only the gateway's own cookie line`,
    )
  }
})

t.test(
  "an upstream head that never ends is cut off: 504 at the route's timeout, 502 past 16 KiB",
  async (t) => {
    const upstream = await scriptedUpstream(t)
    const { base } = await gatewayOnBothReplyPaths(t, upstream, {
      routes: [route('/slow', upstream, { token: 'none', csrf: false, timeout: 1_000 })],
    })
    const started = Date.now()
    const endless = await rawCall(`${base}/slow/endless`, {})
    t.equal(endless.status, 504, 'a head dribbled a line at a time times out')
    t.match(endless.body.toString(), /"error":"upstream_timeout"/)
    t.ok(
      Date.now() - started < 10_000,
      'near the timeout, not restarted by each line (that would take over a minute)',
    )
    const overflow = await rawCall(`${base}/pub/overflow`, {})
    t.equal(overflow.status, 502, 'a head past 16 KiB is refused')
    t.match(overflow.body.toString(), /"error":"upstream_invalid_response"/)
    t.equal(overflow.headers['x-pad'], undefined, 'none of it passes')
    for (const malformed of [
      'length-and-chunked',
      'two-lengths',
      'obs-fold',
      'bare-lf',
      'nul',
      'space-before-colon',
    ]) {
      const res = await rawCall(`${base}/pub/${malformed}`, {})
      t.equal(res.status, 502, `${malformed}: refused`)
      t.match(res.body.toString(), /"error":"upstream_invalid_response"/, `${malformed}: as not valid HTTP`)
    }
  },
)
