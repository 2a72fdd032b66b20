/**
 * How long a token is forwarded, from what the token endpoint says
 * (token-lifetime.ts), on a fake clock: counted from when the request was
 * sent, a second short of the IdP's figure; from a JWT's own `exp - iat`
 * when there is no `expires_in`; `ASSUMED_LIFETIME` when there is neither,
 * and the observer hears of it. And what a refresh keeps of the old set.
 */
import { SignJWT } from 'jose'
import t from 'tap'
import { ASSUMED_LIFETIME, MAX_LIFETIME } from '../../src/oidc/token-lifetime.js'
import type { TokenSet } from '../../src/types.js'
import { discoveredClient, tokenAnswer } from '../helpers/mock-idp.js'

const SENT = 1_800_000_000_000
const current: TokenSet = {
  accessToken: 'at-old',
  accessTokenExpiresAt: 0,
  refreshToken: 'rt-old-0123456789',
  refreshTokenExpiresAt: SENT + 3_600_000,
  idToken: 'id-old',
}

/** A clock that reads SENT when the request goes out, and an hour later for anything after. */
function clock() {
  let now = SENT
  return {
    now: () => now,
    later: () => {
      now = SENT + 3_600_000
    },
  }
}

t.test('expires_in counts from when the request was sent, less a second', async (t) => {
  const c = clock()
  const { idp, oidc, assumed } = await discoveredClient(t, { now: c.now })
  void tokenAnswer(idp, 200, { access_token: 'at', token_type: 'Bearer', expires_in: 300 })
  const set = await oidc.refresh(current)
  t.equal(set.accessTokenExpiresAt, SENT + 299_000)
  t.same(assumed, [])
})

t.test('a token that lives under a second is already over, never negative', async (t) => {
  const { idp, oidc } = await discoveredClient(t, { now: () => SENT })
  void tokenAnswer(idp, 200, { access_token: 'at', token_type: 'Bearer', expires_in: 0 })
  t.equal((await oidc.refresh(current)).accessTokenExpiresAt, SENT)
})

t.test('no expires_in: a JWT access token lives exp - iat, by its issuer’s clock', async (t) => {
  const { idp, oidc, assumed } = await discoveredClient(t, { now: () => SENT })
  // The IdP's clock is an hour off ours: only the difference counts.
  const iat = SENT / 1000 - 3600
  const jwt = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt(iat)
    .setExpirationTime(iat + 600)
    .sign(new Uint8Array(32))
  void tokenAnswer(idp, 200, { access_token: jwt, token_type: 'Bearer' })
  t.equal((await oidc.refresh(current)).accessTokenExpiresAt, SENT + 599_000)
  t.same(assumed, [])
})

t.test('no lifetime at all: ASSUMED_LIFETIME, and the observer hears which call', async (t) => {
  const { idp, oidc, assumed } = await discoveredClient(t, { now: () => SENT })
  void tokenAnswer(idp, 200, { access_token: 'opaque', token_type: 'Bearer' })
  t.equal((await oidc.refresh(current)).accessTokenExpiresAt, SENT + ASSUMED_LIFETIME * 1000 - 1000)
  void tokenAnswer(idp, 200, { access_token: 'x.not-a-jwt.y', token_type: 'Bearer' })
  const token = await oidc.clientCredentials([])
  t.equal(token.expiresAt, SENT + ASSUMED_LIFETIME * 1000 - 1000, 'an unreadable JWT is no lifetime')
  t.same(assumed, ['refresh', 'client_credentials'])
})

t.test(
  'a refresh keeps the refresh token, its expiry and the ID token the IdP did not replace',
  async (t) => {
    const { idp, oidc } = await discoveredClient(t, { now: () => SENT })
    void tokenAnswer(idp, 200, { access_token: 'at-new', token_type: 'Bearer', expires_in: 60 })
    t.same(await oidc.refresh(current), {
      accessToken: 'at-new',
      accessTokenExpiresAt: SENT + 59_000,
      accessTokenLifetime: 59_000,
      refreshToken: current.refreshToken,
      refreshTokenExpiresAt: current.refreshTokenExpiresAt,
      idToken: current.idToken,
    })
  },
)

t.test('a rotated refresh token (RFC 9700 §4.14.2) brings its own expiry, or none', async (t) => {
  const c = clock()
  const { idp, oidc } = await discoveredClient(t, { now: c.now })
  const rotated = { access_token: 'at-new', token_type: 'Bearer', expires_in: 60, refresh_token: 'rt-new' }
  // Keycloak says refresh_expires_in, Entra ID refresh_token_expires_in.
  idp.intercept({ path: '/token', method: 'POST' }).reply(() => {
    c.later()
    return {
      statusCode: 200,
      data: JSON.stringify({ ...rotated, refresh_expires_in: 1800 }),
      responseOptions: { headers: { 'content-type': 'application/json' } },
    }
  })
  const keycloak = await oidc.refresh(current)
  t.equal(keycloak.refreshToken, 'rt-new')
  t.equal(keycloak.accessTokenExpiresAt, SENT + 59_000, 'the access token counts from the send')
  t.equal(keycloak.refreshTokenExpiresAt, SENT + 3_600_000 + 1_800_000, 'the refresh token from the answer')

  void tokenAnswer(idp, 200, { ...rotated, refresh_token_expires_in: 900 })
  t.equal((await oidc.refresh(current)).refreshTokenExpiresAt, SENT + 3_600_000 + 900_000)

  // Keycloak's offline tokens: 0 means no expiry; so does a rotated token with no figure.
  void tokenAnswer(idp, 200, { ...rotated, refresh_expires_in: 0 })
  t.equal((await oidc.refresh(current)).refreshTokenExpiresAt, undefined)
  void tokenAnswer(idp, 200, rotated)
  t.equal((await oidc.refresh(current)).refreshTokenExpiresAt, undefined, 'not the old token’s expiry')

  // An absurd lifetime is a year, as expires_in's is: 1e308 s from now is Infinity ms, no date.
  void tokenAnswer(idp, 200, { ...rotated, refresh_expires_in: 1e308 })
  t.equal(
    (await oidc.refresh(current)).refreshTokenExpiresAt,
    SENT + 3_600_000 + MAX_LIFETIME * 1000,
    'at most MAX_LIFETIME',
  )
})
