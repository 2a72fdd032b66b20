import { createPrivateKey, type KeyObject } from 'node:crypto'
import { isAbsolute, join } from 'node:path'
import { escapedBreaksHint } from './pem-text.js'
import { FileRefused, MAX_CONFIG_FILE_BYTES, readFileWithinSync } from './read.js'
import type { ClientKey } from './types.js'

const KEY_FILE = { a: 'a key file', the: 'the key file' }

type RawClientKey = { file: string } | { pem: string } | { jwk: string | Record<string, unknown> }

interface KeyProblem {
  readonly path: (string | number)[]
  readonly message: string
}

/** JWS algorithms oauth4webapi's PrivateKeyJwt signs with, by key type (RFC 7518 §3.1, RFC 8037). */
const ALGORITHM: Record<string, string> = {
  rsa: 'RS256',
  'ec:prime256v1': 'ES256',
  'ec:secp384r1': 'ES384',
  'ec:secp521r1': 'ES512',
  ed25519: 'EdDSA',
}

/**
 * Reads the `private_key_jwt` key once, at load: a PEM (PKCS#8, PKCS#1 or
 * SEC1) or a private JWK, inline or in a file (relative to the config
 * file). Returns it as a private JWK with its `alg`, or the problem, never
 * the key material.
 */
export function readClientKey(
  raw: RawClientKey,
  baseDir: string,
  at: readonly (string | number)[] = ['oidc', 'clientKey'],
): ClientKey | KeyProblem {
  let text: string | Record<string, unknown>
  let path: (string | number)[]
  if ('file' in raw) {
    path = [...at, 'file']
    try {
      const file = isAbsolute(raw.file) ? raw.file : join(baseDir, raw.file)
      text = readFileWithinSync(file, MAX_CONFIG_FILE_BYTES, KEY_FILE).toString('utf8')
    } catch (err) {
      if (err instanceof FileRefused) return { path, message: err.message }
      throw err
    }
  } else if ('pem' in raw) {
    path = [...at, 'pem']
    text = raw.pem
  } else {
    path = [...at, 'jwk']
    text = raw.jwk
  }

  let key: KeyObject
  try {
    key = parseKey(text)
  } catch {
    return {
      path,
      message: `is not a private key in PEM or JWK form${typeof text === 'string' ? escapedBreaksHint(text) : ''}`,
    }
  }
  const curve = key.asymmetricKeyDetails?.namedCurve
  const alg = ALGORITHM[curve ? `${key.asymmetricKeyType}:${curve}` : (key.asymmetricKeyType ?? '')]
  if (!alg) {
    return {
      path,
      message: `key type ${key.asymmetricKeyType}${curve ? ` (${curve})` : ''} is not supported; use RSA, EC (P-256/384/521) or Ed25519`,
    }
  }
  const jwk = key.export({ format: 'jwk' }) as Record<string, unknown>
  // Identifiers the IdP finds the public key by (RFC 7517 §4.5, §4.8-4.9):
  // Entra ID looks certificate credentials up by thumbprint, not kid.
  const given = typeof text === 'object' ? text : (jwkText(text) ?? {})
  const ids: Record<string, string> = {}
  for (const name of ['kid', 'x5t', 'x5t#S256']) if (typeof given[name] === 'string') ids[name] = given[name]
  return { jwk: { ...jwk, alg, ...ids } }
}

function parseKey(text: string | Record<string, unknown>): KeyObject {
  if (typeof text === 'object') return createPrivateKey({ key: text as never, format: 'jwk' })
  const jwk = jwkText(text)
  if (jwk) return createPrivateKey({ key: jwk as never, format: 'jwk' })
  return createPrivateKey(text)
}

function jwkText(text: string): Record<string, unknown> | undefined {
  if (!text.trimStart().startsWith('{')) return undefined
  try {
    return JSON.parse(text) as Record<string, unknown>
  } catch {
    return undefined
  }
}
