/**
 * The IdP's answers are read into memory whole (oauth4webapi and jose call
 * `.json()`), so their size is bounded where they are read: an IdP, or
 * whatever answers in its place, that streams an answer without end costs
 * the gateway at most IDP_MAX_RESPONSE, not its memory.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gzipSync } from 'node:zlib'
import t from 'tap'
import { networkCause } from '../../src/network-cause.js'
import { createIdpHttp, IDP_MAX_RESPONSE } from '../../src/oidc/idp-http.js'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'

t.test(
  'an answer that does not end: 503 with Retry-After, the session stays, the read stops at the bound',
  async (t) => {
    const stack = await startObservedStack(t, { accessTokenTtl: 60, config: { idpTimeout: 30_000 } })
    const base = stack.gateway.url
    const { jar } = await login(base)
    stack.idp.setFault('flood')
    stack.clock.advance(61_000)
    const rssBefore = process.memoryUsage().rss

    const api = await apiCall(jar, `${base}/api/orders`)
    t.equal(api.status, 503)
    t.equal(api.json().error, 'token_refresh_unavailable')
    t.ok(Number(api.headers.get('retry-after')) > 0, 'Retry-After')
    // The socket buffers of both ends hold some more than was read.
    t.ok(
      stack.idp.stats.floodBytes < IDP_MAX_RESPONSE + 8 * 1024 * 1024,
      `the gateway hung up after ${stack.idp.stats.floodBytes} bytes`,
    )
    t.ok(process.memoryUsage().rss - rssBefore < 64 * 1024 * 1024, 'memory did not follow the answer')
    const line = stack.lines.find(
      (l) => l.msg === 'access token refresh failed: identity provider unavailable',
    )
    t.match(line, { reason: /larger than .* \(UND_ERR_RES_EXCEEDED_MAX_SIZE\)/ }, 'the log says why')

    stack.idp.setFault('ok')
    stack.clock.advance(Number(api.headers.get('retry-after')) * 1_000)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'the session stayed and refreshes')
  },
)

t.test('a compressed answer is bounded by what it decodes to, not by what crossed the wire', async (t) => {
  // 64 MiB of JSON string that gzip packs into some 64 KiB: a bomb for anything that reads it whole.
  const bomb = gzipSync(
    Buffer.concat([Buffer.from('{"keys":"'), Buffer.alloc(64 * 1024 * 1024, 'A'), Buffer.from('"}')]),
  )
  const small = gzipSync(Buffer.from(JSON.stringify({ keys: [] })))
  const server = createServer((req, res) => {
    const body = req.url === '/bomb' ? bomb : small
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
      'content-length': body.length,
    })
    res.end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const http = createIdpHttp({ timeoutMs: 20_000, connectTimeoutMs: 1_000, allowHttp: true })
  t.teardown(() => http.close())

  t.same(
    await (await http.fetch(`${base}/small`, {})).json(),
    { keys: [] },
    'a small compressed answer reads as ever',
  )
  const refused = await http.fetch(`${base}/bomb`, {}).then(
    (response) =>
      response.text().then(
        (text) => text.length,
        (err: unknown) => err,
      ),
    (err: unknown) => err,
  )
  t.type(refused, Error, 'refused, not read')
  t.match(networkCause(refused), /larger than the gateway reads/, 'and said so as any answer too large')
})
