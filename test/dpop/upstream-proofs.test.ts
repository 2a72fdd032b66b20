import { createHash } from 'node:crypto'
import {
  calculateJwkThumbprint,
  decodeJwt,
  decodeProtectedHeader,
  EmbeddedJWK,
  type JWK,
  jwtVerify,
} from 'jose'
import * as oauth from 'oauth4webapi'
import t from 'tap'
import type { DpopAlgorithm } from '../../src/config/types.js'
import { dpopThumbprint, generateDpopKey } from '../../src/dpop/keys.js'
import { DpopNonces } from '../../src/dpop/nonces.js'
import { DpopProofs } from '../../src/dpop/proofs.js'
import { UpstreamProofs } from '../../src/dpop/upstream.js'

const url = new URL('https://orders.example:8443/v1/orders/42?page=2#top')
const token = 'an-access-token'

/** The proof oauth4webapi makes for the same request, as the IdP calls get theirs. */
async function oauth4webapiProof(proofs: DpopProofs, key: Awaited<ReturnType<typeof generateDpopKey>>) {
  let proof = ''
  await oauth.protectedResourceRequest(token, 'GET', url, undefined, undefined, {
    DPoP: await proofs.handle(key),
    [oauth.customFetch]: async (_url, init) => {
      proof = (init.headers as Record<string, string>).dpop!
      return new Response(null, { status: 204 })
    },
  })
  return proof
}

for (const alg of ['ES256', 'PS256', 'Ed25519', 'EdDSA'] as const satisfies readonly DpopAlgorithm[]) {
  t.test(
    `${alg}: the upstream proof is a valid RFC 9449 proof, in the form oauth4webapi gives`,
    async (t) => {
      const key = await generateDpopKey(alg)
      const dpop = new DpopProofs(new DpopNonces())
      const upstream = new UpstreamProofs(new DpopNonces())
      const proof = await upstream.proof(key, 'GET', url, token)

      const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt' })
      t.equal(protectedHeader.alg, alg)
      t.notOk('d' in (protectedHeader.jwk as JWK), 'only the public key in the header')
      t.equal(
        await calculateJwkThumbprint(protectedHeader.jwk as JWK),
        await dpopThumbprint(key),
        'of this key',
      )
      t.equal(payload.htm, 'GET')
      t.equal(payload.htu, 'https://orders.example:8443/v1/orders/42', 'without query or fragment (§4.2)')
      t.equal(payload.ath, createHash('sha256').update(token).digest('base64url'), "the token's hash")
      t.ok(Math.abs(Number(payload.iat) - Date.now() / 1000) < 5)
      t.equal(payload.nonce, undefined, 'no nonce until the origin sends one')

      const reference = await oauth4webapiProof(dpop, key)
      t.same(
        Object.keys(decodeProtectedHeader(proof)).sort(),
        Object.keys(decodeProtectedHeader(reference)).sort(),
        'the same header members as oauth4webapi',
      )
      t.equal(decodeProtectedHeader(reference).alg, alg, 'the same alg')
      t.same(decodeProtectedHeader(proof).jwk, decodeProtectedHeader(reference).jwk, 'the same public JWK')
      const { jti: _a, iat: _b, ...claims } = payload
      const { jti: _c, iat: _d, ...referenceClaims } = decodeJwt(reference)
      t.same(claims, referenceClaims, 'the same claims as oauth4webapi, jti and iat apart')
    },
  )
}

t.test('each proof has its own jti; a new token gets its own ath; the origin nonce goes in', async (t) => {
  const key = await generateDpopKey('ES256')
  const nonces = new DpopNonces()
  const upstream = new UpstreamProofs(nonces)
  const proofs = await Promise.all(Array.from({ length: 50 }, () => upstream.proof(key, 'POST', url, token)))
  t.equal(new Set(proofs.map((p) => decodeJwt(p).jti)).size, 50, 'no jti twice')

  const other = await upstream.proof(key, 'GET', url, 'another-token')
  t.equal(decodeJwt(other).ath, createHash('sha256').update('another-token').digest('base64url'))
  const back = await upstream.proof(key, 'GET', url, token)
  t.equal(decodeJwt(back).ath, createHash('sha256').update(token).digest('base64url'))

  upstream.remember(url.origin, { 'dpop-nonce': 'n-1' })
  t.equal(decodeJwt(await upstream.proof(key, 'GET', url, token)).nonce, 'n-1', "the origin's nonce (§9)")
  const elsewhere = new URL('https://reports.example/v1')
  t.equal(
    decodeJwt(await upstream.proof(key, 'GET', elsewhere, token)).nonce,
    undefined,
    'not another origin',
  )

  const second = await generateDpopKey('ES256')
  const { protectedHeader } = await jwtVerify(await upstream.proof(second, 'GET', url, token), EmbeddedJWK)
  t.equal(
    await calculateJwkThumbprint(protectedHeader.jwk as JWK),
    await dpopThumbprint(second),
    'each key its own',
  )
})

t.test('EC and Ed25519 proofs are made in the same tick; an RSA proof is a promise', async (t) => {
  const upstream = new UpstreamProofs(new DpopNonces())
  for (const alg of ['ES256', 'ES384', 'ES512', 'Ed25519', 'EdDSA'] as const) {
    const key = await generateDpopKey(alg)
    const proof = upstream.proof(key, 'GET', url, token)
    t.type(proof, 'string', `${alg}: no promise, even for a key not seen before`)
    const { protectedHeader } = await jwtVerify(proof as string, EmbeddedJWK, { typ: 'dpop+jwt' })
    t.equal(protectedHeader.alg, alg, `${alg}: the header names it as jose does`)
  }
  // An RSA signature is about a millisecond: it stays off the event loop.
  const rsa = upstream.proof(await generateDpopKey('PS256'), 'GET', url, token)
  t.ok(rsa instanceof Promise, 'PS256: signed on the thread pool')
  await rsa
})
