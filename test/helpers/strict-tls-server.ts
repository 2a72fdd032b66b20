import { spawn } from 'node:child_process'
import { once } from 'node:events'
import type { Test } from 'tap'
import type { Issued } from './certificates.js'

export interface StrictTlsServer {
  /** `https://localhost:<port>` */
  readonly url: string
}

/**
 * A TLS server that checks the client certificate in the handshake and
 * refuses one it does not take with the alert RFC 8446 §6.2 names for why
 * (`unknown_ca`, `certificate_expired`, `certificate_revoked`,
 * `certificate_required`), as OpenSSL set to verify, Envoy, HAProxy and a
 * JVM's TLS do: `openssl s_server -Verify 1 -verify_return_error`. Node's
 * own TLS server cannot stand in for it: it checks a certificate after the
 * handshake and closes without an alert (nginx answers an HTTP 400 page).
 * A certificate it takes gets its status page, whatever the request: point
 * at it only what it is to refuse.
 */
export async function startStrictTlsServer(
  t: Test,
  opts: {
    /** Its own certificate: for `localhost`, from the CA the client trusts. */
    readonly server: Issued
    /** The CA file client certificates must chain to. */
    readonly ca: string
    /** A CRL file checked too (`-crl_check`). */
    readonly crl?: string
    /** Judges validity at this time rather than now (`-attime`). */
    readonly at?: Date
    readonly version?: 'TLSv1.2' | 'TLSv1.3'
  },
): Promise<StrictTlsServer> {
  const args = [
    's_server',
    '-accept',
    '127.0.0.1:0',
    '-cert',
    opts.server.certFile,
    '-key',
    opts.server.keyFile,
    '-CAfile',
    opts.ca,
    '-Verify',
    '1',
    '-verify_return_error',
    '-www',
    ...(opts.version === 'TLSv1.2' ? ['-tls1_2'] : opts.version === 'TLSv1.3' ? ['-tls1_3'] : []),
    ...(opts.crl ? ['-CRL', opts.crl, '-crl_check'] : []),
    ...(opts.at ? ['-attime', String(Math.floor(opts.at.getTime() / 1000))] : []),
  ]
  const child = spawn('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = once(child, 'exit')
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill()
    await exited
  })
  let errors = ''
  child.stderr.on('data', (chunk: Buffer) => {
    errors = `${errors}${chunk}`.slice(-2000)
  })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => {
      out = `${out}${chunk}`.slice(-2000)
      const accepting = /^ACCEPT 127\.0\.0\.1:(\d+)$/m.exec(out)
      if (accepting) resolve(Number(accepting[1]))
    })
    child.on('error', reject)
    child.on('exit', (code) =>
      reject(new Error(`openssl s_server exited (${code}) before it listened: ${errors}`)),
    )
  })
  return { url: `https://localhost:${port}` }
}
