import { type KeyObject, sign } from 'node:crypto'
import type { RequestListener } from 'node:http'
import type { JWK } from 'jose'
import type { Test } from 'tap'
import { LogoutTokenVerifier } from '../../src/oidc/logout-token.js'
import { serveHttp } from './http-server.js'
import { BACKCHANNEL_LOGOUT_EVENT } from './logout.js'

export const ISSUER = 'https://idp.example'
export const CLIENT = 'gatehouse-test'
/** The verifier's clock, in seconds, and every token's `iat`. */
export const NOW = 1_800_000_000
export const EVENT = { [BACKCHANNEL_LOGOUT_EVENT]: {} }

/**
 * A verifier of `ISSUER`'s logout tokens for `CLIENT` at `NOW`, whose
 * `jwks_uri` is a real HTTP server answering with `answer`; closed when `t` ends.
 */
export async function verifierServing(
  t: Test,
  answer: RequestListener,
  options: { idTokenAlgorithms?: string[] } = {},
): Promise<LogoutTokenVerifier> {
  const url = await serveHttp(t, answer)
  return new LogoutTokenVerifier({
    jwksUri: `${url}/jwks`,
    issuer: ISSUER,
    clientId: CLIENT,
    ...options,
    now: () => NOW * 1000,
  })
}

/** `verifierServing` with a JWKS of `keys`, in that order. */
export function verifierOfJwks(
  t: Test,
  keys: readonly JWK[],
  options: { idTokenAlgorithms?: string[] } = {},
): Promise<LogoutTokenVerifier> {
  const body = JSON.stringify({ keys })
  return verifierServing(
    t,
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(body)
    },
    options,
  )
}

/**
 * A compact JWS signed RS256 with node:crypto, for RSA keys under 2048 bits,
 * which jose will neither make nor sign with.
 */
export function signRs256(privateKey: KeyObject, header: object, claims: object): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const input = `${part({ alg: 'RS256', ...header })}.${part(claims)}`
  return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`
}
