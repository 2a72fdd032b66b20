/**
 * A JWKS in which several keys match a logout token's `kid` and `alg`:
 * RFC 7517 §4.5 only says keys SHOULD have distinct `kid`s, an IdP that
 * reuses one across a rotation publishes the old and new key under it,
 * and a token without `kid` matches every key of its type. jose then
 * offers each candidate rather than pick one; the verifier refused such a
 * token as ambiguous, so every logout of that IdP was answered 400 and the
 * sessions it ended ran on. Each candidate is now tried: the token stands
 * if one of them verifies it, and is refused as before otherwise.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose'
import t, { type Test } from 'tap'
import { CLIENT, EVENT, ISSUER, NOW, signRs256, verifierOfJwks } from '../helpers/logout-token-verifier.js'

async function keyOf(kid: string | undefined) {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  return {
    kid,
    privateKey,
    jwk: { ...(await exportJWK(publicKey)), ...(kid === undefined ? {} : { kid }), alg: 'ES256', use: 'sig' },
  }
}
type Key = Awaited<ReturnType<typeof keyOf>>

function sign(key: Key, claims: JWTPayload) {
  return new SignJWT({
    iss: ISSUER,
    aud: CLIENT,
    iat: NOW,
    jti: `jti-${Math.random()}`,
    events: EVENT,
    ...claims,
  })
    .setProtectedHeader({
      alg: 'ES256',
      typ: 'logout+jwt',
      ...(key.kid === undefined ? {} : { kid: key.kid }),
    })
    .sign(key.privateKey)
}

/** A verifier of the issuer whose JWKS, served by a real HTTP server, holds `keys`. */
const verifier = (t: Test, keys: Key[]) =>
  verifierOfJwks(
    t,
    keys.map((k) => k.jwk),
  )

t.test('a token signed by the second of two keys sharing its kid is verified', async (t) => {
  const old = await keyOf('signing')
  const current = await keyOf('signing')
  const v = await verifier(t, [old, current])
  t.match(await v.verify(await sign(current, { sub: 'user-1', jti: 'j1' })), { jti: 'j1', sub: 'user-1' })
  t.match(
    await v.verify(await sign(old, { sid: 'sid-1', jti: 'j2' })),
    { jti: 'j2', sid: 'sid-1' },
    'and the first',
  )
})

t.test('a token without kid, against a JWKS of keys without kid: the one that signed it', async (t) => {
  const [a, b, c] = [await keyOf(undefined), await keyOf(undefined), await keyOf(undefined)]
  const v = await verifier(t, [a, b, c])
  t.match(await v.verify(await sign(c, { sub: 'user-2' })), { sub: 'user-2' })
})

t.test('signed by none of the keys that match: refused as a bad signature', async (t) => {
  const v = await verifier(t, [await keyOf('signing'), await keyOf('signing')])
  await t.rejects(v.verify(await sign(await keyOf('signing'), { sub: 'u' })), {
    code: 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN',
    message: "The logout token is not valid: the signature does not verify against the issuer's key",
  })
})

t.test('verified by one of them but its claims wrong: refused for the claim, as with one key', async (t) => {
  const [a, b] = [await keyOf('signing'), await keyOf('signing')]
  const v = await verifier(t, [a, b])
  await t.rejects(v.verify(await sign(b, { sub: 'u', aud: 'another-client' })), {
    code: 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN',
    message: /aud/,
  })
})

t.test(
  'a key of the ones matching that cannot be used (RSA under 2048 bits) is passed over for the next',
  async (t) => {
    // An IdP that rotated off a 1024-bit key under the same kid publishes
    // both: jose imports the short one, and refuses it only as it verifies.
    // Signed with node:crypto: jose will not sign with a key that short.
    const short = generateKeyPairSync('rsa', { modulusLength: 1024 })
    const current = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const jwkOf = (key: KeyObject) => ({
      ...(key.export({ format: 'jwk' }) as JWK),
      kid: 'signing',
      use: 'sig',
    })
    const v = await verifierOfJwks(t, [jwkOf(short.publicKey), jwkOf(current.publicKey)])
    const header = { kid: 'signing', typ: 'logout+jwt' }
    const claims = { iss: ISSUER, aud: CLIENT, iat: NOW, jti: 'j', sub: 'user-3', events: EVENT }
    t.match(await v.verify(signRs256(current.privateKey, header, claims)), { jti: 'j', sub: 'user-3' })
    const forged = signRs256(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, header, claims)
    await t.rejects(
      v.verify(forged),
      {
        code: 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN',
        message: "The logout token is not valid: the signature does not verify against the issuer's key",
      },
      'and one none verifies is refused for its signature, not for the short key',
    )
  },
)

t.test(
  'of two keys matching, neither can be imported (EC points off their curve): refused for the keys, not as more than 16',
  async (t) => {
    const [a, b] = [await keyOf('signing'), await keyOf('signing')]
    const offCurve = (key: Key): Key => ({ ...key, jwk: { ...key.jwk, x: 'AAAA', y: 'AAAA' } })
    const v = await verifier(t, [offCurve(a), offCurve(b)])
    await t.rejects(v.verify(await sign(b, { sub: 'u' })), {
      code: 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN',
      message:
        "The logout token is not valid: the key in the issuer's JWKS that matches its kid and alg cannot be used: it is no valid key of its type, or an RSA key under 2048 bits.",
    })
  },
)
