import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'

/** A certificate and its key made for this run: the files, and their PEM text. */
export interface Issued {
  readonly certFile: string
  readonly keyFile: string
  readonly cert: string
  readonly key: string
}

/** A private CA made by openssl for one test, removed at its teardown. */
export interface TestPki {
  readonly dir: string
  readonly ca: Issued
  /**
   * A certificate signed by the CA: `localhost` and 127.0.0.1 as server
   * names (and any `dns` given; only `onlyDns` when given), so one issue
   * serves a TLS server or a client.
   */
  issue(
    name: string,
    opts?: {
      readonly dns?: readonly string[]
      readonly onlyDns?: readonly string[]
      /** Dated 2020: what a server sees of a certificate that expired while the gateway ran. */
      readonly expired?: boolean
    },
  ): Issued
  /** A self-signed certificate, e.g. for `self_signed_tls_client_auth`; `expired` dates it 2020. */
  selfSigned(name: string, opts?: { readonly expired?: boolean }): Issued
  /** A CRL of the CA's (a PEM file) that revokes `certificates`, issued by it. */
  revocationList(certificates: readonly Issued[]): string
}

const openssl = (dir: string, args: readonly string[]) =>
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']

export function makePki(t: Test): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pki-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const read = (name: string): Issued => ({
    certFile: join(dir, `${name}.crt`),
    keyFile: join(dir, `${name}.key`),
    cert: readFileSync(join(dir, `${name}.crt`), 'utf8'),
    key: readFileSync(join(dir, `${name}.key`), 'utf8'),
  })
  openssl(dir, [
    'req',
    '-x509',
    ...EC,
    '-days',
    '2',
    '-subj',
    '/CN=Gatehouse Test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
  ])
  let serial = 1
  return {
    dir,
    ca: read('ca'),
    issue(name, opts = {}) {
      const san = (opts.onlyDns ?? ['localhost', ...(opts.dns ?? [])])
        .map((d) => `DNS:${d}`)
        .concat(opts.onlyDns ? [] : ['IP:127.0.0.1'])
        .join(',')
      writeFileSync(
        join(dir, `${name}.ext`),
        `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\n`,
      )
      openssl(dir, [
        'req',
        '-new',
        ...EC,
        '-subj',
        `/CN=${name}`,
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.csr`,
      ])
      if (opts.expired) {
        // `openssl x509 -req` cannot date a certificate in the past; `openssl ca` can.
        openssl(dir, [
          'ca',
          '-batch',
          '-config',
          caConfig(dir, name, ++serial),
          '-cert',
          'ca.crt',
          '-keyfile',
          'ca.key',
          '-in',
          `${name}.csr`,
          '-extfile',
          `${name}.ext`,
          ...EXPIRED_IN_2020,
          '-notext',
          '-out',
          `${name}.crt`,
        ])
        return read(name)
      }
      openssl(dir, [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-set_serial',
        String(++serial),
        '-days',
        '1',
        '-extfile',
        `${name}.ext`,
        '-out',
        `${name}.crt`,
      ])
      return read(name)
    },
    revocationList(certificates) {
      const name = `crl-${++serial}`
      const config = caConfig(dir, name, ++serial)
      const ca = ['-config', config, '-cert', 'ca.crt', '-keyfile', 'ca.key']
      for (const certificate of certificates) openssl(dir, ['ca', ...ca, '-revoke', certificate.certFile])
      openssl(dir, ['ca', ...ca, '-gencrl', '-crldays', '1', '-out', `${name}.pem`])
      return join(dir, `${name}.pem`)
    },
    selfSigned(name, opts = {}) {
      if (!opts.expired) {
        openssl(dir, [
          'req',
          '-x509',
          ...EC,
          '-days',
          '1',
          '-subj',
          `/CN=${name}`,
          '-keyout',
          `${name}.key`,
          '-out',
          `${name}.crt`,
        ])
        return read(name)
      }
      // `openssl req` cannot date a certificate in the past; `openssl ca` can.
      const config = caConfig(dir, name, ++serial)
      openssl(dir, [
        'req',
        '-new',
        ...EC,
        '-subj',
        `/CN=${name}`,
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.csr`,
      ])
      openssl(dir, [
        'ca',
        '-batch',
        '-config',
        config,
        '-selfsign',
        '-keyfile',
        `${name}.key`,
        '-in',
        `${name}.csr`,
        ...EXPIRED_IN_2020,
        '-notext',
        '-out',
        `${name}.crt`,
      ])
      return read(name)
    },
  }
}

/** `openssl ca`'s validity for an expired certificate: one day, long past. */
const EXPIRED_IN_2020 = ['-startdate', '20200101000000Z', '-enddate', '20200102000000Z']
/** An `openssl ca` configuration with a database of its own, named `name` in `dir`: the file's name. */
function caConfig(dir: string, name: string, serial: number): string {
  writeFileSync(join(dir, `${name}.db`), '')
  // Above those `issue` sets, so a revocation list names none by mistake.
  writeFileSync(join(dir, `${name}.serial`), `${(0x10000 + serial).toString(16).padStart(8, '0')}\n`)
  writeFileSync(join(dir, `${name}.crlnumber`), '01\n')
  writeFileSync(
    join(dir, `${name}.cnf`),
    `[ca]\ndefault_ca = c\n[c]\ndatabase = ${name}.db\nnew_certs_dir = .\ndefault_md = sha256\npolicy = p\nserial = ${name}.serial\ncrlnumber = ${name}.crlnumber\n[p]\ncommonName = supplied\n`,
  )
  return `${name}.cnf`
}

/**
 * A config file in `dir` for `clientAuth: tls_client_auth`: `tls` holds
 * the lines under `oidc:` (its `tls:` block, from line 7), `rest` the
 * top-level lines after `session:`. It reads `SESSION_SECRET`.
 */
export function tlsClientAuthConfig(dir: string, tls: string, rest = 'routes: []'): string {
  const file = join(dir, `gatehouse-${Math.random().toString(36).slice(2)}.yaml`)
  writeFileSync(
    file,
    `server:
  publicUrl: https://app.example.com
oidc:
  issuer: https://idp.example.com
  clientId: my-bff
  clientAuth: tls_client_auth
${tls}
session:
  secret: \${SESSION_SECRET}
${rest}
`,
  )
  return file
}
