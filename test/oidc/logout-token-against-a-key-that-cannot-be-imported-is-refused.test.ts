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
import { generateKeyPairSync, sign } from 'node:crypto'
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose'
import t, { type Test } from 'tap'
import { LogoutTokenVerifier } from '../../src/oidc/logout-token.js'
import { serveHttp } from '../helpers/http-server.js'

const ISSUER = 'https://idp.example'
const CLIENT = 'gatehouse-test'
const NOW = 1_800_000_000
const EVENT = { 'http://schemas.openid.net/event/backchannel-logout': {} }

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

async function verifierOf(t: Test, keys: JWK[]) {
  const body = JSON.stringify({ keys })
  const url = await serveHttp(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(body)
  })
  return new LogoutTokenVerifier({
    jwksUri: `${url}/jwks`,
    issuer: ISSUER,
    clientId: CLIENT,
    idTokenAlgorithms: ['ES256', 'RS256'],
    now: () => NOW * 1000,
  })
}

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
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const input = `${part({ alg: 'RS256', kid: 'k', typ: 'logout+jwt' })}.${part({ iss: ISSUER, aud: CLIENT, iat: NOW, jti: 'j', sub: 'user-1', events: EVENT })}`
  const token = `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`
  const verifier = await verifierOf(t, [
    { ...(publicKey.export({ format: 'jwk' }) as JWK), kid: 'k', use: 'sig' },
  ])
  await t.rejects(verifier.verify(token), { code: 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN', message: UNUSABLE })
})

t.test('a JWKS that cannot be read is still the IdP unavailable', async (t) => {
  const { token } = await signed('ES256')
  const url = await serveHttp(t, (req) => req.socket.destroy())
  const verifier = new LogoutTokenVerifier({
    jwksUri: `${url}/jwks`,
    issuer: ISSUER,
    clientId: CLIENT,
    idTokenAlgorithms: ['ES256'],
    now: () => NOW * 1000,
  })
  await t.rejects(verifier.verify(token), {
    code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE',
    message: /the issuer's JWKS could not be fetched/,
  })
})

t.test('a JWKS answer that is no JSON (a proxy’s page) is still the IdP unavailable', async (t) => {
  const { token } = await signed('ES256')
  const url = await serveHttp(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<html>maintenance</html>')
  })
  const verifier = new LogoutTokenVerifier({
    jwksUri: `${url}/jwks`,
    issuer: ISSUER,
    clientId: CLIENT,
    idTokenAlgorithms: ['ES256'],
    now: () => NOW * 1000,
  })
  await t.rejects(verifier.verify(token), {
    code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE',
    message: /the issuer's JWKS could not be fetched/,
  })
})
