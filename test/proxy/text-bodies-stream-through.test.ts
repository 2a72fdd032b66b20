import t, { type Test } from 'tap'
import { route } from '../helpers/gateway.js'
import { startScriptedStack } from '../helpers/scripted-stack.js'
import { rawCall } from '../helpers/scripted-upstream.js'

/**
 * A text/plain body is the client's bytes, in whatever charset it names:
 * the gateway streams it like any other body instead of letting Fastify
 * decode it as UTF-8, which rewrote the bytes and skipped the route's
 * streaming body limit.
 */
async function setup(t: Test) {
  const started = await startScriptedStack(t, (upstream) => [
    route('/api/public', upstream, { token: 'none', bodyLimit: 1024 }),
  ])
  started.upstream.answer((res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end('ok')
  })
  return started
}

t.test('a Latin-1 text/plain body arrives byte for byte', async (t) => {
  const { upstream, base } = await setup(t)
  const body = Buffer.from('caf\xe9 cr\xe8me', 'latin1')
  const res = await rawCall(
    `${base}/api/public/notes`,
    { 'content-type': 'text/plain; charset=iso-8859-1', 'content-length': String(body.length) },
    { method: 'POST', body },
  )
  t.equal(res.status, 200)
  const seen = upstream.seen.at(-1)!
  t.same(seen.body, body, 'not decoded as UTF-8 and encoded again')
  t.equal(seen.headers['content-length'], String(body.length))
})

t.test("a text/plain body over the route's bodyLimit gets 413 like any other", async (t) => {
  const { upstream, base } = await setup(t)
  const declared = await rawCall(
    `${base}/api/public/notes`,
    { 'content-type': 'text/plain', 'content-length': '2048' },
    { method: 'POST', body: Buffer.alloc(2048, 'x') },
  )
  t.equal(declared.status, 413)
  t.equal(JSON.parse(declared.body.toString()).error, 'payload_too_large')
  const chunked = await rawCall(
    `${base}/api/public/notes`,
    { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' },
    { method: 'POST', body: Buffer.alloc(2048, 'x') },
  )
  t.equal(chunked.status, 413, 'cut off while streaming')
  t.equal(upstream.seen.length, 0, 'neither reached the upstream whole')
})
