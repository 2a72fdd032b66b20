/**
 * A route's TLS material is made into one SecureContext per config
 * (connect-options.ts), kept by the material's object. cert-manager and
 * most renewals rewrite the same files: a reload that reads the same
 * config text must still give new upstream connections the renewed
 * certificate, not the context made from the files' earlier contents.
 */
import { copyFileSync } from 'node:fs'
import { createServer } from 'node:https'
import type { TLSSocket } from 'node:tls'
import t from 'tap'
import { makePki } from '../helpers/certificates.js'
import { route } from '../helpers/gateway.js'
import { startReloadable } from '../helpers/reloadable.js'

t.test(
  'a client certificate renewed in place: after a reload, new upstream connections offer the renewed one',
  async (t) => {
    const pki = makePki(t)
    const server = pki.issue('orders')
    const first = pki.issue('client-2026')
    const seen: string[] = []
    const upstream = createServer(
      { cert: server.cert, key: server.key, ca: pki.ca.cert, requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        seen.push(String((req.socket as TLSSocket).getPeerCertificate().subject?.CN))
        res.setHeader('content-type', 'application/json')
        res.end('{}')
      },
    )
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
    t.teardown(() => {
      upstream.closeAllConnections()
      upstream.close()
    })
    const url = `https://127.0.0.1:${(upstream.address() as { port: number }).port}`
    const mesh = route('/api/mesh', url, {
      token: 'none',
      csrf: false,
      tls: { cert: { file: first.certFile }, key: { file: first.keyFile }, ca: { file: pki.ca.certFile } },
    })
    const stack = await startReloadable(t, () => [mesh])
    const get = () => fetch(`${stack.url}/api/mesh/x`).then((r) => r.status)
    t.equal(await get(), 200, 'served over the first certificate')
    t.equal(await get(), 200)
    const renewed = pki.issue('client-2027')
    copyFileSync(renewed.certFile, first.certFile)
    copyFileSync(renewed.keyFile, first.keyFile)
    const result = await stack.running.reload()
    t.equal(result.result, 'applied', 'the same config text with new file contents is a new config')
    t.equal(await get(), 200, 'served after the reload')
    t.equal(await get(), 200)
    t.same(
      seen,
      ['client-2026', 'client-2026', 'client-2027', 'client-2027'],
      'the upstream saw the renewed certificate from the reload on',
    )
  },
)
