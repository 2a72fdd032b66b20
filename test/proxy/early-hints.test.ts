import type { ServerResponse } from 'node:http'
import { connect } from 'node:net'
import t, { type Test } from 'tap'
import { gatewayOnBothReplyPaths, getWithHints as get } from '../helpers/both-reply-paths.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'

const LINK = '</app.css>; rel=preload; as=style'

async function setup(t: Test) {
  const upstream = await scriptedUpstream()
  t.teardown(() => upstream.close())
  const { base, staleCookie } = await gatewayOnBothReplyPaths(t, upstream.url)
  return { upstream, base, staleCookie }
}

/** 103 with a preload and what a hostile upstream adds to it, then the answer. */
function hintsThenAnswer(res: ServerResponse): void {
  res.writeEarlyHints({
    link: LINK,
    'set-cookie': 'gatehouse=attacker; Path=/',
    'x-hint': 'kept',
  })
  res.writeHead(200, { 'content-type': 'text/plain' }).end('final answer')
}

t.test('an upstream 103 reaches the browser as early hints, and the final answer follows', async (t) => {
  const { upstream, base, staleCookie } = await setup(t)
  upstream.answer(hintsThenAnswer)
  for (const [name, url, headers] of [
    ['hijacked reply', `${base}/pub/x`, {}],
    ["Fastify's send (a stale cookie is cleared)", `${base}/maybe/x`, { cookie: staleCookie }],
  ] as const) {
    const answer = await get(url, headers)
    t.equal(answer.status, 200, `${name}: the final answer arrives`)
    t.equal(answer.body, 'final answer', `${name}: with its body`)
    t.equal(answer.informational.length, 1, `${name}: one 103`)
    const hints = answer.informational[0]!
    t.equal(hints.status, 103)
    t.equal(hints.headers.link, LINK, `${name}: the preload is forwarded`)
    t.equal(hints.headers['x-hint'], 'kept')
    t.equal(hints.headers['set-cookie'], undefined, `${name}: no cookie rides on an informational answer`)
  }
})

t.test('an HTTP/1.0 client gets no 1xx (RFC 9110 §15.2), only the answer', async (t) => {
  const { upstream, base } = await setup(t)
  upstream.answer(hintsThenAnswer)
  const received = await new Promise<string>((resolve) => {
    const socket = connect(Number(new URL(base).port), '127.0.0.1', () =>
      socket.write('GET /pub/x HTTP/1.0\r\nHost: x\r\n\r\n'),
    )
    let text = ''
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1')
    })
    socket.on('end', () => resolve(text))
  })
  t.match(received, /^HTTP\/1\.1 200 /, 'the first status line is the answer')
  t.notMatch(received, /103/)
  t.match(received, /final answer$/)
})

t.test('other 1xx, bad hints and a flood of them: the answer still arrives, or a 502', async (t) => {
  const { upstream, base } = await setup(t)
  upstream.answer((res) => {
    res.writeProcessing()
    // A Link value Node would refuse to send, written past Node's checks.
    res.socket!.write('HTTP/1.1 103 Early Hints\r\nLink: not a link\r\n\r\n')
    res.writeHead(200).end('after the noise')
  })
  const noisy = await get(`${base}/pub/x`)
  t.equal(noisy.status, 200)
  t.equal(noisy.body, 'after the noise')
  t.same(
    noisy.informational.map((i) => i.status),
    [],
    '102 and a 103 without a valid Link are dropped',
  )

  upstream.answer((res) => {
    for (let i = 0; i < 100; i++) res.writeEarlyHints({ link: LINK })
    res.writeHead(200).end('too late')
  })
  const flood = await get(`${base}/pub/x`)
  t.equal(flood.status, 502, 'an upstream that never stops sending 1xx is cut off')
  t.ok(flood.informational.length <= 8, `${flood.informational.length} hints forwarded at most`)
})
