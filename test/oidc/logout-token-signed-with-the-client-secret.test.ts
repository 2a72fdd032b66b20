/**
 * OpenID Connect Back-Channel Logout 1.0 §2.4: logout tokens are signed
 * with the keys ID tokens are signed with. An OP whose client is
 * registered for HS256 ID tokens (OIDC Core §10.1, the dev IdP's
 * `hs256IdTokens` quirk) signs its logout tokens HS256 with the client
 * secret too, a key no JWKS publishes: verified against the JWKS alone,
 * every one was refused ("no key in the issuer's JWKS matches") and the
 * sessions the user ended at the IdP ran on.
 */

import { exportSPKI, generateKeyPair, type JWTPayload, SignJWT } from 'jose'
import t, { type Test } from 'tap'
import { getGlobalDispatcher, setGlobalDispatcher } from 'undici'
import { LogoutTokenVerifier } from '../../src/oidc/logout-token.js'
import { apiCall, login } from '../helpers/login.js'
import { BACKCHANNEL_LOGOUT_EVENT, endIdpSession } from '../helpers/logout.js'
import { ISSUER, mockAgent } from '../helpers/mock-idp.js'
import { startStack } from '../helpers/stack.js'

const CLIENT = 'gatehouse-test'
const SECRET = 'the-client-secret-0123456789abcdef'
const NOW = 1_800_000_000
/** `id_token_signing_alg_values_supported` of an issuer that signs ID tokens with the client secret. */
const SIGNS_ID_TOKENS_HMAC = ['RS256', 'HS256', 'HS384', 'HS512']

function signHmac(key: Uint8Array, alg: string, claims: JWTPayload = {}) {
  return new SignJWT({
    iss: ISSUER,
    aud: CLIENT,
    iat: NOW,
    jti: `jti-${Math.random()}`,
    events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
    sub: 'alice',
    ...claims,
  })
    .setProtectedHeader({ alg, typ: 'logout+jwt' })
    .sign(key)
}

/**
 * A verifier of `clientSecret`'s client whose issuer serves nothing: the
 * MockAgent refuses every connection, so an HMAC token that sent the
 * verifier to the JWKS would fail as keys that cannot be fetched.
 */
function verifier(
  t: Test,
  clientSecret: string | undefined,
  idTokenAlgorithms: readonly string[] | undefined,
) {
  const { agent } = mockAgent(t)
  const previous = getGlobalDispatcher()
  setGlobalDispatcher(agent)
  t.teardown(() => setGlobalDispatcher(previous))
  return new LogoutTokenVerifier({
    jwksUri: `${ISSUER}/jwks`,
    issuer: ISSUER,
    clientId: CLIENT,
    clientSecret,
    idTokenAlgorithms,
    now: () => NOW * 1000,
  })
}

const secretKey = (secret: string) => new TextEncoder().encode(secret)

t.test('HS256, HS384 and HS512 tokens keyed by the client secret are verified with it', async (t) => {
  const v = verifier(t, SECRET, SIGNS_ID_TOKENS_HMAC)
  for (const alg of ['HS256', 'HS384', 'HS512']) {
    t.match(
      await v.verify(await signHmac(secretKey(SECRET), alg, { jti: alg })),
      { jti: alg, sub: 'alice' },
      alg,
    )
  }
})

t.test('an HMAC token keyed otherwise is refused, whatever the key', async (t) => {
  const v = verifier(t, SECRET, SIGNS_ID_TOKENS_HMAC)
  await t.rejects(v.verify(await signHmac(secretKey('another-secret-0123456789abcdef'), 'HS256')), {
    code: 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN',
    message: /the signature does not verify against the client secret/,
  })
  // The algorithm confusion: an issuer's public key, which anyone can read, as an HMAC key.
  const { publicKey } = await generateKeyPair('RS256', { extractable: true })
  const published = secretKey(await exportSPKI(publicKey))
  await t.rejects(v.verify(await signHmac(published, 'HS256')), {
    message: /the signature does not verify against the client secret/,
  })
})

t.test('without a client secret (private_key_jwt, mTLS), an HMAC token is refused, saying why', async (t) => {
  const v = verifier(t, undefined, SIGNS_ID_TOKENS_HMAC)
  await t.rejects(v.verify(await signHmac(secretKey(SECRET), 'HS256')), {
    code: 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN',
    message: /signed with HS256, whose key is a client secret .* this client authenticates without one/,
  })
})

t.test(
  'an HMAC token from an issuer that signs no ID token so is refused, however it is keyed',
  async (t) => {
    // A client secret is often weaker than a signing key, and known to more
    // than the IdP (each replica, a secret store): with an issuer that signs
    // ID tokens only with its own keys, whoever holds it could otherwise end
    // any user's sessions with a token the IdP never sent.
    for (const advertised of [['RS256', 'ES256'], undefined]) {
      const v = verifier(t, SECRET, advertised)
      await t.rejects(
        v.verify(await signHmac(secretKey(SECRET), 'HS256')),
        {
          code: 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN',
          message: /signed with HS256, which the identity provider does not sign ID tokens with/,
        },
        `advertised: ${advertised ?? 'nothing (RS256 alone)'}`,
      )
    }
    const onlyHs256 = verifier(t, SECRET, ['HS256'])
    t.match(
      await onlyHs256.verify(await signHmac(secretKey(SECRET), 'HS256')),
      { sub: 'alice' },
      'HS256 listed',
    )
    await t.rejects(
      onlyHs256.verify(await signHmac(secretKey(SECRET), 'HS512')),
      {
        message:
          /signed with HS512, which the identity provider does not sign ID tokens with \(it advertises HS256\)/,
      },
      'HS512 not listed',
    )
  },
)

t.test('an HS256 logout token, signed with the client secret, ends the session', async (t) => {
  const lines: Record<string, unknown>[] = []
  const { idp, gateway } = await startStack(t, {
    idp: { quirks: { hs256IdTokens: true } },
    backchannelLogout: true,
    config: { logLevel: 'warn' },
    gateway: { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
  })
  const base = gateway.url
  const alice = await login(base, { user: 'alice' })
  const elsewhere = await login(base, { user: 'alice' })
  t.equal((await apiCall(alice.jar, `${base}/api/orders`)).status, 200)

  const ended = await endIdpSession(alice.jar, idp.issuer)
  t.ok(ended.status < 400, `the IdP logged out (HTTP ${ended.status})`)
  t.equal((await apiCall(alice.jar, `${base}/api/orders`)).status, 401, 'that session ended')
  t.equal((await apiCall(elsewhere.jar, `${base}/api/orders`)).status, 200, 'another IdP session stays')
  t.same(
    lines.filter((l) => (l.level as number) >= 40),
    [],
    'no logout token refused',
  )
})
