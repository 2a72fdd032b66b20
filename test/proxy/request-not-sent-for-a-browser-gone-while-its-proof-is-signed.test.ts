import { pbkdf2 } from 'node:crypto'
import { connect } from 'node:net'
import t from 'tap'
import { route } from '../helpers/gateway.js'
import { serveHttp } from '../helpers/http-server.js'
import { apiCall, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

/*
 * An RSA DPoP proof is signed on libuv's thread pool. A browser that left
 * while its proof was signed still had its request sent to the upstream
 * (a POST maybe, for nobody): nothing asked again once the proof was
 * made, and the exchange's close listener, added at dispatch, came after
 * the close. A replay checked for a browser gone only before its proof.
 */

/** Keeps every thread of libuv's pool busy; resolves once they are free again. */
function occupyThreadPool(): Promise<void> {
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4)
  return Promise.all(
    Array.from(
      { length: threads },
      () => new Promise<void>((resolve) => pbkdf2('x', 'y', 600_000, 32, 'sha512', () => resolve())),
    ),
  ).then(() => {})
}

t.test('a request whose browser left while its RSA proof was signed is not sent upstream', async (t) => {
  const seen: string[] = []
  const upstream = await serveHttp(t, (req, res) => {
    seen.push(req.url ?? '')
    res.end('ok')
  })
  const stack = await startStack(t, {
    idp: { dpopAlgorithms: ['PS256'] },
    config: { oidc: { dpop: true, dpopAlgorithm: 'PS256' } },
    routes: () => [route('/api', upstream)],
  })
  const { jar } = await login(stack.gateway.url)
  const warm = await apiCall(jar, `${stack.gateway.url}/api/warm`)
  t.equal(warm.status, 200, 'the proof signer is ready')

  const url = `${stack.gateway.url}/api/gone`
  const poolFree = occupyThreadPool()
  const socket = connect(Number(new URL(url).port), '127.0.0.1')
  await new Promise<void>((resolve) => socket.once('connect', resolve))
  socket.write(
    `POST /api/gone HTTP/1.1\r\nHost: x\r\nCookie: ${jar.header(url)}\r\nX-CSRF: 1\r\nContent-Length: 0\r\n\r\n`,
  )
  socket.destroy()
  await poolFree
  // Sent after the one that was abandoned, and on the same thread pool: once it is answered, the other would have been sent.
  const after = await apiCall(jar, `${stack.gateway.url}/api/after`)
  t.equal(after.status, 200)
  t.same(seen, ['/api/warm', '/api/after'], 'the abandoned request never reached the upstream')
})
