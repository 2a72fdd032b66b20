import type { IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { WebSocket, WebSocketServer } from 'ws'
import { gatewayOnBothReplyPaths, getWithHints } from '../helpers/both-reply-paths.js'
import { route } from '../helpers/gateway.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'
import { BOUND } from '../helpers/websocket.js'

/*
 * RFC 6797 §6.1: `Strict-Transport-Security` is the host's policy, not the
 * answer's, and §8.1 has the browser take the first of several fields. An
 * upstream's answer on one route carried its `max-age=0` to the browser
 * ahead of the field the ingress adds, so one misconfigured or hostile
 * upstream switched HSTS off for the whole origin (§6.1.1), and its
 * `includeSubDomains` (§6.1.2) reached every sibling host: the origin-wide
 * reach `Alt-Svc`, `Clear-Site-Data` and `NEL` are dropped for.
 */

const OFF = 'max-age=0; includeSubDomains'

/** An answer, with the headers these tests read. */
async function get(url: string, headers: Record<string, string> = {}) {
  const answer = await getWithHints(url, headers)
  return {
    ...answer,
    hsts: answer.headers['strict-transport-security'],
    kept: answer.headers['x-kept'],
    setCookie: answer.headers['set-cookie'] ?? [],
    hintHsts: answer.informational.map((hint) => hint.headers['strict-transport-security']),
  }
}

t.test(
  "an upstream's Strict-Transport-Security never reaches the browser unless its route allows it",
  async (t) => {
    const upstream = await scriptedUpstream()
    t.teardown(() => upstream.close())
    const { base, config, staleCookie } = await gatewayOnBothReplyPaths(t, upstream.url, {
      routes: [
        route('/secure', upstream.url, { token: 'none', csrf: false, allowStrictTransportSecurity: true }),
        route('/private', upstream.url, { token: 'user', csrf: false }),
      ],
    })
    upstream.answer((res) => {
      res.writeEarlyHints({ link: '</app.css>; rel=preload; as=style', 'strict-transport-security': OFF })
      res
        .writeHead(200, { 'strict-transport-security': OFF, 'content-type': 'text/plain', 'x-kept': '1' })
        .end('answer')
    })

    for (const [name, url, headers] of [
      ['hijacked reply', `${base}/pub/x`, {}],
      ["Fastify's send (a stale cookie is cleared)", `${base}/maybe/x`, { cookie: staleCookie }],
    ] as const) {
      const answer = await get(url, headers)
      t.equal(answer.status, 200, `${name}: the answer arrives`)
      t.equal(answer.body, 'answer', `${name}: whole`)
      t.equal(answer.hsts, undefined, `${name}: without the upstream's Strict-Transport-Security`)
      t.equal(answer.kept, '1', `${name}: its other headers pass`)
      t.same(answer.hintHsts, [undefined], `${name}: its early hint arrives, without it`)
    }
    const cleared = await get(`${base}/maybe/x`, { cookie: staleCookie })
    t.ok(
      cleared.setCookie.some((line) => line.startsWith(`${config.session.cookieName}=;`)),
      "the gateway's own Set-Cookie still goes out beside the upstream's answer",
    )

    const allowed = await get(`${base}/secure/x`)
    t.equal(allowed.status, 200)
    t.equal(allowed.hsts, OFF, 'a route that allows it passes it on')
    t.same(allowed.hintHsts, [OFF], 'in its early hints too')
    t.equal(upstream.seen.length, 4, 'every request reached the upstream')

    // The gateway's own answers: it terminates no TLS, so the policy is the
    // front's to send, and none of these carries one of the gateway's.
    for (const [name, url, status] of [
      ['its 401 to a route that needs a session', `${base}/private/x`, 401],
      ['its 404', `${base}/nowhere`, 404],
      ['its liveness answer', `${base}/healthz`, 200],
    ] as const) {
      const own = await get(url)
      t.equal(own.status, status, `${name}: ${status}`)
      t.equal(own.hsts, undefined, `${name}: no Strict-Transport-Security`)
    }
    t.equal(upstream.seen.length, 4, 'none of them reached the upstream')
  },
)

t.test("a WebSocket upstream's Strict-Transport-Security never reaches the browser's 101", async (t) => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise<void>((resolve) => wss.once('listening', resolve))
  t.teardown(async () => {
    for (const client of wss.clients) client.terminate()
    await new Promise((resolve) => wss.close(resolve))
  })
  const sent: string[][] = []
  wss.on('headers', (headers) => {
    headers.push(`Strict-Transport-Security: ${OFF}`)
    sent.push([...headers])
  })
  const upstream = `http://127.0.0.1:${(wss.address() as AddressInfo).port}`
  const { base, port } = await gatewayOnBothReplyPaths(t, upstream, {
    routes: [
      route('/live', upstream, { token: 'none', csrf: false, websocket: true }),
      route('/live-allowed', upstream, {
        token: 'none',
        csrf: false,
        websocket: true,
        allowStrictTransportSecurity: true,
      }),
    ],
  })

  for (const path of ['/live/x', '/live-allowed/x']) {
    const socket = new WebSocket(`ws://127.0.0.1:${port}${path}`, {
      headers: { origin: base },
      handshakeTimeout: BOUND,
    })
    const answer = await new Promise<IncomingMessage>((resolve, reject) => {
      socket.once('upgrade', resolve)
      socket.once('error', reject)
    })
    t.equal(answer.statusCode, 101, `${path}: the socket opens`)
    t.equal(
      answer.headers['strict-transport-security'],
      undefined,
      `${path}: the browser's handshake answer is the gateway's own, without the upstream's field`,
    )
    socket.terminate()
  }
  t.equal(sent.length, 2, 'both upgrades reached the upstream, whose 101 carried the field')
  t.ok(
    sent.every((headers) => headers.includes(`Strict-Transport-Security: ${OFF}`)),
    'as sent by the upstream',
  )
})
