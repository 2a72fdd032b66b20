import { X509Certificate } from 'node:crypto'
import { request } from 'node:http'
import { createServer } from 'node:https'
import type { TLSSocket } from 'node:tls'
import { CLIENT_CERT_HEADER, CLIENT_VERIFY_HEADER } from '../../dev/idp-mtls.js'

export interface MtlsFront {
  /** `https://localhost:<port>` */
  readonly url: string
  close(): Promise<void>
}

/**
 * The TLS terminator an IdP's mTLS endpoints sit behind (RFC 8705 §5), as
 * nginx with `ssl_verify_client optional_no_ca` runs it: it asks every client
 * for a certificate, accepts any (the IdP decides), and passes it on to the
 * HTTP server at `targetPort` (a function when the server starts after
 * its front, whose URL it must advertise) in a header, URL-encoded like nginx's
 * `$ssl_client_escaped_cert`, with whether it chains to `ca`. Headers of
 * those names from the client are dropped.
 */
export async function startMtlsFront(
  targetPort: number | (() => number),
  tls: {
    readonly cert: string
    readonly key: string
    readonly ca: string
    /** As nginx's `ssl_verify_client on`: a certificate that does not chain to `ca` ends the handshake. */
    readonly strict?: boolean
  },
): Promise<MtlsFront> {
  const server = createServer(
    { cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: true, rejectUnauthorized: tls.strict === true },
    (req, res) => {
      const socket = req.socket as TLSSocket
      const headers = { ...req.headers }
      delete headers[CLIENT_CERT_HEADER]
      delete headers[CLIENT_VERIFY_HEADER]
      const peer = socket.getPeerCertificate()
      if (peer?.raw) {
        headers[CLIENT_CERT_HEADER] = encodeURIComponent(new X509Certificate(peer.raw).toString())
        headers[CLIENT_VERIFY_HEADER] = socket.authorized ? 'SUCCESS' : `FAILED:${socket.authorizationError}`
      } else headers[CLIENT_VERIFY_HEADER] = 'NONE'
      const upstream = request(
        {
          host: '127.0.0.1',
          port: typeof targetPort === 'number' ? targetPort : targetPort(),
          method: req.method,
          path: req.url,
          headers,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers)
          answer.pipe(res)
        },
      )
      upstream.on('error', () => res.destroy())
      req.pipe(upstream)
    },
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `https://localhost:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
