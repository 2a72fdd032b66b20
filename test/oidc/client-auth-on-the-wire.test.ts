/**
 * What the gateway's client authentication puts on the wire to the token
 * endpoint, byte for byte, for each method (RFC 6749 §2.3.1, RFC 7523):
 * the unit tests of client-auth.ts check the encoder; these check that the
 * client sends what the encoder makes, and nothing besides.
 */
import { generateKeyPairSync } from 'node:crypto'
import { decodeProtectedHeader, importJWK, jwtVerify } from 'jose'
import t from 'tap'
import type { TokenSet } from '../../src/types.js'
import { CLIENT_ID } from '../helpers/gateway.js'
import { discoveredClient, ISSUER, metadata, revocationAnswer, tokenAnswer } from '../helpers/mock-idp.js'

const current: TokenSet = {
  accessToken: 'at',
  accessTokenExpiresAt: 0,
  refreshToken: 'rt-0123456789',
  refreshTokenExpiresAt: undefined,
  idToken: undefined,
}
const ok = { access_token: 'at-new', token_type: 'Bearer', expires_in: 60 }
const basic = (header: string | undefined) => Buffer.from(header!.replace(/^Basic /, ''), 'base64').toString()

t.test(
  'client_secret_basic: a form-safe secret goes as it is, in the Authorization header only',
  async (t) => {
    const { idp, oidc } = await discoveredClient(t, { oidc: { clientSecret: 'my-bff_secret.v2*0123456789' } })
    const sent = tokenAnswer(idp, 200, ok)
    await oidc.refresh(current)
    const { headers, body } = await sent
    t.equal(basic(headers.authorization), `${CLIENT_ID}:my-bff_secret.v2*0123456789`)
    t.notOk(body.has('client_secret'), 'not in the body too')
    t.equal(body.get('grant_type'), 'refresh_token')
  },
)

t.test(
  'client_secret_basic: any other character is form-encoded before base64 (RFC 6749 §2.3.1)',
  async (t) => {
    const secret = "tilde~bang!quote'(paren) space:colon%é"
    const { idp, oidc } = await discoveredClient(t, { oidc: { clientSecret: secret } })
    const sent = tokenAnswer(idp, 200, ok)
    await oidc.refresh(current)
    const [id, encoded] = basic((await sent).headers.authorization).split(':')
    t.equal(id, CLIENT_ID)
    t.equal(encoded, 'tilde%7Ebang%21quote%27%28paren%29+space%3Acolon%25%C3%A9', 'WHATWG form encoding')
    t.equal(decodeURIComponent(encoded!.replaceAll('+', ' ')), secret, 'decodes back')
  },
)

t.test('client_secret_post: id and secret in the body, no Authorization header', async (t) => {
  const { idp, oidc } = await discoveredClient(t, {
    oidc: { clientAuth: 'client_secret_post', clientSecret: 'post~secret-0123456789' },
  })
  const sent = tokenAnswer(idp, 200, ok)
  await oidc.clientCredentials(['read'])
  const { headers, body } = await sent
  t.equal(headers.authorization, undefined)
  t.equal(body.get('client_id'), CLIENT_ID)
  t.equal(body.get('client_secret'), 'post~secret-0123456789')
})

t.test('private_key_jwt: a signed assertion for the token endpoint, thumbprints in its header', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk = { ...privateKey.export({ format: 'jwk' }), alg: 'ES256', kid: 'k1', 'x5t#S256': 'dGh1bWI' }
  const { idp, oidc } = await discoveredClient(t, {
    oidc: { clientAuth: 'private_key_jwt', clientSecret: undefined, clientKey: { jwk } },
  })
  const sent = tokenAnswer(idp, 200, ok)
  await oidc.refresh(current)
  const { headers, body } = await sent
  t.equal(headers.authorization, undefined, 'no secret anywhere')
  t.notOk(body.has('client_secret'))
  t.equal(body.get('client_assertion_type'), 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer')
  const assertion = body.get('client_assertion')!
  t.match(decodeProtectedHeader(assertion), { alg: 'ES256', kid: 'k1', 'x5t#S256': 'dGh1bWI' })
  const key = await importJWK({ ...publicKey.export({ format: 'jwk' }) }, 'ES256')
  const { payload } = await jwtVerify(assertion, key, { issuer: CLIENT_ID, subject: CLIENT_ID })
  t.equal(payload.aud, ISSUER, 'aud: the issuer (RFC 7523 §3)')
  t.type(payload.jti, 'string', 'RFC 7523 §3: single use')
  t.type(payload.exp, 'number')
})

t.test(
  'the credential probe: invalid_grant means the credentials work, invalid_client that they do not',
  async (t) => {
    const { idp, oidc } = await discoveredClient(t)
    const first = tokenAnswer(idp, 400, { error: 'invalid_grant' })
    t.match(await oidc.probeCredentials(), { verdict: 'accepted', answer: /invalid_grant/ })
    t.equal((await first).body.get('grant_type'), 'refresh_token', 'a refresh grant for a token nobody has')
    void tokenAnswer(idp, 401, { error: 'invalid_client' })
    t.match(await oidc.probeCredentials(), { verdict: 'refused', failure: { answer: 'invalid_client' } })
    void tokenAnswer(idp, 400, { error: 'unauthorized_client' })
    t.match(await oidc.probeCredentials(), { verdict: 'accepted', answer: /grant is not allowed/ })
    void tokenAnswer(idp, 503, 'busy', { 'content-type': 'text/plain' })
    void revocationAnswer(idp, 503, 'busy', { 'content-type': 'text/plain' })
    t.match(await oidc.probeCredentials(), {
      verdict: 'inconclusive',
      answer: 'token endpoint: HTTP 503; revocation endpoint: HTTP 503',
    })
    const sent = tokenAnswer(idp, 400, { error: 'invalid_grant' })
    await oidc.probeCredentials('client_secret_post')
    t.ok((await sent).body.has('client_secret'), 'another method on request')
  },
)

t.test(
  "when the token endpoint's answer says neither, the probe revokes a random token with the configured authentication (RFC 7009 §2.1)",
  async (t) => {
    const secret = 'my-bff_secret.v2*0123456789'
    const { idp, oidc } = await discoveredClient(t, { oidc: { clientSecret: secret } })
    void tokenAnswer(idp, 400, '')
    const sent = revocationAnswer(idp, 200, '')
    t.match(await oidc.probeCredentials(), {
      verdict: 'accepted',
      endpoint: 'revocation',
      answer: 'HTTP 200 to a random token (token endpoint: HTTP 400 that is not JSON)',
    })
    const { headers, body } = await sent
    t.equal(basic(headers.authorization), `${CLIENT_ID}:${secret}`, 'as the token endpoint is sent it')
    t.match(body.get('token'), /^[\w-]{43}$/, '32 random bytes nobody was issued')
    t.equal(body.get('token_type_hint'), 'refresh_token', 'the hint logout sends')
    t.notOk(body.has('client_secret'))

    void tokenAnswer(idp, 400, '')
    void revocationAnswer(idp, 401, { error: 'invalid_client' })
    t.match(await oidc.probeCredentials(), {
      verdict: 'refused',
      endpoint: 'revocation',
      failure: { operation: 'revocation', answer: 'invalid_client' },
    })

    // A 400 at the revocation endpoint says neither: only a 200 or a refused client decide there.
    void tokenAnswer(idp, 400, '')
    void revocationAnswer(idp, 400, { error: 'invalid_request' })
    t.match(await oidc.probeCredentials(), { verdict: 'inconclusive', endpoint: 'revocation' })

    // The token endpoint decides: the revocation endpoint is not asked (no interceptor is left pending).
    void tokenAnswer(idp, 400, { error: 'invalid_grant' })
    t.match(await oidc.probeCredentials(), { verdict: 'accepted', endpoint: 'token' })
  },
)

t.test('the probe never asks the revocation endpoint with a method it does not list', async (t) => {
  const { idp, oidc } = await discoveredClient(t, {
    oidc: { clientAuth: 'client_secret_post', clientSecret: 'post-secret-0123456789' },
    metadata: metadata({ revocation_endpoint_auth_methods_supported: ['client_secret_basic'] }),
  })
  void tokenAnswer(idp, 400, '')
  t.match(await oidc.probeCredentials(), {
    verdict: 'inconclusive',
    endpoint: 'token',
    answer:
      /does not take client_secret_post \(revocation_endpoint_auth_methods_supported: client_secret_basic\)$/,
  })
  const sent = revocationAnswer(idp, 200, '')
  void tokenAnswer(idp, 400, '')
  t.match(await oidc.probeCredentials('client_secret_basic'), { verdict: 'accepted', endpoint: 'revocation' })
  t.match((await sent).headers.authorization, /^Basic /, 'a listed method is asked')
})
