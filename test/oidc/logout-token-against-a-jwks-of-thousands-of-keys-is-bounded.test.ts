/**
 * A JWKS whose keys nearly all match a logout token's `kid` and `alg`: the
 * IdP's to fill (up to the 1 MiB read of any IdP answer), and a token
 * without `kid` matches every key of its type. Each matching key was tried
 * (logout-token-signed-by-one-of-keys-sharing-a-kid.test.ts), all of them,
 * so a forged token, which anyone may post, cost a signature check per
 * key: against 5,000 EC keys some 2 s of CPU a token, 11 s for 10 at once.
 * A token is now tried against MAX_MATCHING_KEYS of them at most, then
 * refused as ambiguous. And jose looks at every key of the JWKS for each
 * token, importing each that matches and skipping those it cannot: only
 * the first MAX_JWKS_KEYS of a JWKS are now read.
 */
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose'
import t, { type Test } from 'tap'
import { MAX_MATCHING_KEYS } from '../../src/oidc/logout-token.js'
import { MAX_JWKS_KEYS } from '../../src/oidc/logout-token-keys.js'
import { CLIENT, EVENT, ISSUER, NOW, verifierOfJwks } from '../helpers/logout-token-verifier.js'

const signer = await generateKeyPair('ES256')
const signerJwk: JWK = { ...(await exportJWK(signer.publicKey)), alg: 'ES256', use: 'sig' }
// One key that verifies nothing the test signs, repeated: each copy is a key of its own to jose.
const decoy: JWK = {
  ...(await exportJWK((await generateKeyPair('ES256')).publicKey)),
  alg: 'ES256',
  use: 'sig',
}

function token(jti: string, kid?: string) {
  return new SignJWT({ iss: ISSUER, aud: CLIENT, iat: NOW, jti, sub: 'user-1', events: EVENT })
    .setProtectedHeader({ alg: 'ES256', typ: 'logout+jwt', ...(kid === undefined ? {} : { kid }) })
    .sign(signer.privateKey)
}

/** A verifier of an issuer whose JWKS, served by a real HTTP server, holds `decoys` decoys and then the signer's key. */
function signerAfter(t: Test, decoys: number, kids = false) {
  const keys = kids
    ? [
        ...Array.from({ length: decoys }, (_, i) => ({ ...decoy, kid: `old-${i}` })),
        { ...signerJwk, kid: 'now' },
      ]
    : [...Array.from({ length: decoys }, () => decoy), signerJwk]
  return verifierOfJwks(t, keys)
}

t.test(`the signer's key as the ${MAX_MATCHING_KEYS}th that matches: verified`, async (t) => {
  const verifier = await signerAfter(t, MAX_MATCHING_KEYS - 1)
  t.match(await verifier.verify(await token('j1')), { jti: 'j1', sub: 'user-1' })
})

t.test(
  `the signer's key past the ${MAX_MATCHING_KEYS}th that matches: refused, not looked for`,
  async (t) => {
    const verifier = await signerAfter(t, MAX_MATCHING_KEYS)
    await t.rejects(verifier.verify(await token('j2')), {
      code: 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN',
      message: `The logout token is not valid: more than ${MAX_MATCHING_KEYS} keys in the issuer's JWKS match its kid and alg, and it was tried against ${MAX_MATCHING_KEYS} at most, none of which verifies it.`,
    })
  },
)

t.test('against a JWKS of 2,000 matching keys, a token costs the bound, not the JWKS', async (t) => {
  const verifier = await signerAfter(t, 2_000)
  await t.rejects(verifier.verify(await token('j3')), {
    code: 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN',
    message: /more than \d+ keys in the issuer's JWKS match/,
  })
})

t.test(`the signer's key as the ${MAX_JWKS_KEYS}th of the JWKS, its own kid: verified`, async (t) => {
  const verifier = await signerAfter(t, MAX_JWKS_KEYS - 1, true)
  t.match(await verifier.verify(await token('j4', 'now')), { jti: 'j4' })
})

t.test(
  `the signer's key past the ${MAX_JWKS_KEYS}th of the JWKS: not read, and the refusal says so`,
  async (t) => {
    const verifier = await signerAfter(t, MAX_JWKS_KEYS, true)
    await t.rejects(verifier.verify(await token('j5', 'now')), {
      code: 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN',
      message: `The logout token is not valid: no key of the first ${MAX_JWKS_KEYS} in the issuer's JWKS, which holds ${MAX_JWKS_KEYS + 1}, matches its kid and alg; the rest are not read.`,
    })
  },
)
