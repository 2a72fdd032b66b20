import { connect } from 'node:net'
import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { jarFetch } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

t.test('client-side limits: header size, header and request timeouts, keep-alive', async (t) => {
  const stack = await startStack(t)
  const server = stack.gateway.app.server
  t.equal(server.headersTimeout, 10_000)
  t.equal(server.requestTimeout, 60_000)
  t.equal(server.keepAliveTimeout, 72_000)

  const { port } = new URL(stack.gateway.url)
  const status = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => {
      socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`)
    })
    socket.once('data', (d) => {
      resolve(d.toString().split('\r\n')[0]!)
      socket.destroy()
    })
    socket.once('error', reject)
  })
  t.match(status, /^HTTP\/1\.1 431/, 'a header block over maxHeaderSize gets 431')
  t.equal(
    (await jarFetch(new CookieJar(), `${stack.gateway.url}/healthz`)).status,
    200,
    'and the gateway keeps serving',
  )
})
