/**
 * Given TLS material as text, `tls.connect` makes a SecureContext for every
 * connection, parsing every certificate of `ca` (and the key and
 * certificate) again: 8–30 ms of the event loop for Debian's bundle, and a
 * route's burst of new upstream connections held it for seconds.
 * The material is made into one context per config (connect-options.ts).
 */
import { createServer } from 'node:https'
import tls from 'node:tls'
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { makePki } from '../helpers/certificates.js'

t.test('a route with tls: makes its context once, not per upstream connection', async (t) => {
  const pki = makePki(t)
  const server = pki.issue('orders')
  const client = pki.issue('gatehouse-client')
  let handshakes = 0
  // Each answer closes its connection, so every request dials anew.
  const upstream = createServer(
    { cert: server.cert, key: server.key, ca: pki.ca.cert, requestCert: true, rejectUnauthorized: true },
    (_req, res) => {
      res.setHeader('connection', 'close')
      res.end('{}')
    },
  )
  upstream.on('secureConnection', () => handshakes++)
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    upstream.closeAllConnections()
    upstream.close()
  })
  const app = await buildTestApp(t, {
    routes: [
      {
        path: '/api',
        upstream: `https://127.0.0.1:${(upstream.address() as { port: number }).port}`,
        token: 'none',
        csrf: false,
        tls: {
          ca: { file: pki.ca.certFile },
          cert: { file: client.certFile },
          key: { file: client.keyFile },
        },
      },
    ],
  })

  const made = tls.createSecureContext
  let contexts = 0
  tls.createSecureContext = (...args) => {
    contexts++
    return made(...args)
  }
  t.teardown(() => {
    tls.createSecureContext = made
  })
  const statuses: number[] = []
  for (let i = 0; i < 10; i++)
    statuses.push((await app.inject({ method: 'GET', url: '/api/items' })).statusCode)
  t.same(new Set(statuses), new Set([200]), 'every request is served over the client certificate')
  t.equal(handshakes, 10, 'each on a new connection')
  t.ok(contexts <= 1, `while at most one context is made for them all (${contexts})`)
})
