/**
 * An issuer's JWKS that was read, but whose key for the token's `kid`
 * cannot be imported: an EC point off its curve (WebCrypto's DataError),
 * an RSA key under 2048 bits (jose's TypeError). jose lets both through as
 * they came, as it does a failed fetch, and they were answered as one: 503
 * "the issuer's JWKS could not be fetched", with the token held and tried
 * again, blaming the IdP's availability for a key it publishes wrong and
 * naming nothing an operator could fix. Now refused for the key (400), and
 * a JWKS that cannot be read is still a 503.
 */
import { generateKeyPairSync } from 'node:crypto'
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose'
import t, { type Test } from 'tap'
import {
  CLIENT,
  EVENT,
  ISSUER,
  NOW,
  signRs256,
  verifierOfJwks,
  verifierServing,
} from '../helpers/logout-token-verifier.js'

async function signed(alg: 'ES256') {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const token = await new SignJWT({
    iss: ISSUER,
    aud: CLIENT,
    iat: NOW,
    jti: 'j',
    sub: 'user-1',
    events: EVENT,
  })
    .setProtectedHeader({ alg, kid: 'k', typ: 'logout+jwt' })
    .sign(privateKey)
  return { token, jwk: { ...(await exportJWK(publicKey)), kid: 'k', use: 'sig' } }
}

const verifierOf = (t: Test, keys: JWK[]) =>
  verifierOfJwks(t, keys, { idTokenAlgorithms: ['ES256', 'RS256'] })

const UNUSABLE =
  "The logout token is not valid: the key in the issuer's JWKS that matches its kid and alg cannot be used: it is no valid key of its type, or an RSA key under 2048 bits."

t.test('an EC key whose point is off its curve: refused for the key, not the IdP unavailable', async (t) => {
  const { token, jwk } = await signed('ES256')
  const verifier = await verifierOf(t, [{ ...jwk, x: 'AAAA', y: 'AAAA' }])
  await t.rejects(verifier.verify(token), { code: 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN', message: UNUSABLE })
})

t.test('an RSA key of 1024 bits: refused for the key, not the IdP unavailable', async (t) => {
  // Signed with node:crypto: jose will not make or sign with a key that short.
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 })
  const token = signRs256(
    privateKey,
    { kid: 'k', typ: 'logout+jwt' },
    { iss: ISSUER, aud: CLIENT, iat: NOW, jti: 'j', sub: 'user-1', events: EVENT },
  )
  const verifier = await verifierOf(t, [
    { ...(publicKey.export({ format: 'jwk' }) as JWK), kid: 'k', use: 'sig' },
  ])
  await t.rejects(verifier.verify(token), { code: 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN', message: UNUSABLE })
})

t.test('a JWKS that cannot be read is still the IdP unavailable', async (t) => {
  const { token } = await signed('ES256')
  const verifier = await verifierServing(t, (req) => req.socket.destroy(), { idTokenAlgorithms: ['ES256'] })
  await t.rejects(verifier.verify(token), {
    code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE',
    message: /the issuer's JWKS could not be fetched/,
  })
})

t.test('a JWKS answer that is no JSON (a proxy’s page) is still the IdP unavailable', async (t) => {
  const { token } = await signed('ES256')
  const verifier = await verifierServing(
    t,
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html>maintenance</html>')
    },
    { idTokenAlgorithms: ['ES256'] },
  )
  await t.rejects(verifier.verify(token), {
    code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE',
    message: /the issuer's JWKS could not be fetched/,
  })
})
