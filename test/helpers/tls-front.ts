import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:tls'

export interface TlsFront {
  /** `https://<host>:<port>`: what the browser is told to use. */
  readonly url: string
  readonly port: number
  close(): Promise<void>
}

/**
 * A self-signed certificate for `hosts`, made by openssl for this run: what
 * a test's https servers present, to a browser told to accept it.
 */
export function selfSigned(hosts: readonly string[]): { readonly key: Buffer; readonly cert: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-tls-'))
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '1',
        '-subj',
        `/CN=${hosts[0]}`,
        '-addext',
        `subjectAltName=${hosts.map((host) => `DNS:${host}`).join(',')}`,
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    )
    return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * The TLS-terminating proxy Gatehouse runs behind in production, for tests
 * that need an https origin: a self-signed certificate for `host`
 * (`localhost` unless given), and every connection relayed as is to
 * `targetPort` on loopback. Browsers must be told to accept the
 * certificate, and to resolve any other `host` to loopback
 * (`--host-resolver-rules`).
 */
export async function startTlsFront(targetPort: number, host = 'localhost'): Promise<TlsFront> {
  const { key, cert } = selfSigned([host])
  const sockets = new Set<Socket>()
  const server = createServer({ key, cert }, (client) => {
    const upstream = connect(targetPort, '127.0.0.1')
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      socket.on('error', () => {
        client.destroy()
        upstream.destroy()
      })
    }
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `https://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}
