import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto'
import { isAbsolute, join } from 'node:path'
import { escapedBreaksHint } from './pem-text.js'
import { FileRefused, MAX_CONFIG_FILE_BYTES, readFileWithinSync } from './read.js'
import type { CertificateFacts, TlsMaterial } from './types.js'

type Path = (string | number)[]
type PemItem = { file: string } | { pem: string }

export interface RawTls {
  readonly cert?: PemItem | undefined
  readonly key?: PemItem | undefined
  readonly ca?: PemItem | undefined
  readonly servername?: string | undefined
}

interface TlsProblem {
  readonly path: Path
  readonly message: string
}

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

/**
 * Reads the PEM items of `oidc.tls` or `routes[].tls` once, at load, and
 * checks what would otherwise fail on the first handshake, far from the
 * config: a file that is missing, text that is not a certificate or key, a
 * certificate outside its validity period, a key that is not the
 * certificate's. Each problem names the file (or option) and the reason,
 * never the key material.
 */
export function readTls(
  raw: RawTls,
  at: Path,
  baseDir: string,
  now: number = Date.now(),
): { material: TlsMaterial } | { problems: TlsProblem[] } {
  const problems: TlsProblem[] = []
  const read = (name: 'cert' | 'key' | 'ca') => {
    const item = raw[name]
    if (item === undefined) return undefined
    if ('pem' in item)
      return {
        text: item.pem,
        source: formatOption([...at, name, 'pem']),
        path: [...at, name, 'pem'],
        // A problem is reported under the option already: not named twice.
        named: '',
      }
    const path = [...at, name, 'file']
    try {
      const file = isAbsolute(item.file) ? item.file : join(baseDir, item.file)
      const naming = { a: 'a certificate or key file', the: item.file }
      return {
        text: readFileWithinSync(file, MAX_CONFIG_FILE_BYTES, naming).toString('utf8'),
        source: item.file,
        named: `${item.file} `,
        path,
      }
    } catch (err) {
      if (!(err instanceof FileRefused)) throw err
      // "cannot read <file>: …" names it already; a refusal of the file's kind or size does not.
      const message = err.message.startsWith('cannot read ') ? err.message : `${item.file} ${err.message}`
      problems.push({ path, message })
      return undefined
    }
  }
  const cert = read('cert')
  const key = read('key')
  const ca = read('ca')

  let leaf: X509Certificate | undefined
  /** The certificate file's chain, leaf first: each is sent in the handshake, so each must be valid. */
  let chain: X509Certificate[] = []
  if (cert) {
    const blocks = cert.text.match(CERTIFICATE_BLOCK) ?? []
    const parsed = blocks.map(parseCertificate)
    leaf = parsed[0]
    if (!leaf || parsed.some((c) => c === undefined)) {
      problems.push({
        path: cert.path,
        message: `${cert.named}is not a PEM certificate${escapedBreaksHint(cert.text)}`,
      })
    } else {
      chain = parsed as X509Certificate[]
      chain.forEach((certificate, i) => {
        const outside = validityProblem(certificate, now)
        if (!outside) return
        // The leaf is "the certificate"; a chain's intermediate is named by its place and subject.
        const which = i === 0 ? '' : `certificate ${i + 1} of the chain (${subjectOf(certificate)}): `
        problems.push({ path: cert.path, message: `${cert.named.replace(/ $/, ': ')}${which}${outside}` })
      })
    }
  }
  let privateKey: KeyObject | undefined
  if (key) {
    try {
      privateKey = createPrivateKey(key.text)
    } catch (err) {
      // Node's message for an encrypted key changed between OpenSSL versions
      // ("passphrase", "interrupted or cancelled"); the PEM says it itself.
      const encrypted =
        /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,ENCRYPTED/.test(key.text) ||
        /passphrase/i.test((err as Error).message)
      problems.push({
        path: key.path,
        message: encrypted
          ? `${key.named}is an encrypted private key; give it unencrypted (keep the file readable by Gatehouse only)`
          : `${key.named}is not a PEM private key${escapedBreaksHint(key.text)}`,
      })
    }
  }
  if (leaf && privateKey && !leaf.checkPrivateKey(privateKey)) {
    problems.push({
      path: key!.path,
      message: `${key!.named}is not the private key of the certificate in ${cert!.source}`,
    })
  }
  // Whether the other option is given, not whether it could be read: an
  // unreadable file is its own problem, and "required" would be untrue.
  if (leaf && raw.key === undefined) problems.push({ path: [...at, 'key'], message: 'is required with cert' })
  if (privateKey && raw.cert === undefined)
    problems.push({ path: [...at, 'cert'], message: 'is required with key' })
  if (ca) {
    const blocks = ca.text.match(CERTIFICATE_BLOCK) ?? []
    const parsed = blocks.map(parseCertificate)
    if (blocks.length === 0 || parsed.some((c) => c === undefined)) {
      problems.push({
        path: ca.path,
        message: `${ca.named}is not a PEM certificate (or bundle of them)${escapedBreaksHint(ca.text)}`,
      })
    } else {
      // A bundle may carry an expired root next to its successor; only all expired is fatal.
      const reasons = parsed.map((c) => validityProblem(c!, now))
      if (reasons.every((r) => r !== undefined))
        problems.push({ path: ca.path, message: `${ca.named.replace(/ $/, ': ')}${reasons[0]}` })
    }
  }
  if (problems.length > 0) return { problems }
  const certificate: CertificateFacts | undefined = leaf && {
    source: cert!.source,
    subject: subjectOf(leaf),
    // The handshake fails when the first certificate of the chain expires, leaf or intermediate.
    notAfter: Math.min(...chain.map((c) => Date.parse(c.validTo))),
    fingerprint256: leaf.fingerprint256,
  }
  return {
    material: {
      ...(cert ? { cert: cert.text } : {}),
      ...(key ? { key: key.text } : {}),
      ...(ca ? { ca: ca.text } : {}),
      ...(raw.servername === undefined ? {} : { servername: raw.servername }),
      ...(certificate ? { certificate } : {}),
    },
  }
}

function subjectOf(certificate: X509Certificate): string {
  return certificate.subject.replace(/\n/g, ', ')
}

function parseCertificate(pem: string): X509Certificate | undefined {
  try {
    return new X509Certificate(pem)
  } catch {
    return undefined
  }
}

function validityProblem(certificate: X509Certificate, now: number): string | undefined {
  const notAfter = Date.parse(certificate.validTo)
  const notBefore = Date.parse(certificate.validFrom)
  if (now > notAfter) return `the certificate expired on ${new Date(notAfter).toISOString()}`
  if (now < notBefore) return `the certificate is not valid before ${new Date(notBefore).toISOString()}`
  return undefined
}

function formatOption(path: Path): string {
  let out = ''
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`
  return out
}
