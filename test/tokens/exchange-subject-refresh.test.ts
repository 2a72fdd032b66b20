/**
 * When the exchange step refreshes the login token for its subject, and
 * when the subject counts as expired: an access token is renewed by every
 * refresh; an ID token only if the IdP sends one (OIDC Core §12.2), so a
 * refresh that kept it is not repeated, and its `exp`, on the IdP's clock,
 * is read with the tolerance it was accepted with.
 */
import { UnsecuredJWT } from 'jose'
import t from 'tap'
import type { ExchangeConfig } from '../../src/config/types.js'
import {
  ID_TOKEN_CLOCK_TOLERANCE,
  refreshesSubject,
  subjectExpired,
  subjectLife,
} from '../../src/tokens/exchange-subject.js'
import type { TokenSet } from '../../src/types.js'

const T0 = 1_700_000_000_000
const REFRESH_BEFORE = 5_000
const byIdToken: ExchangeConfig = { subjectToken: 'id_token', scopes: [], grant: 'token-exchange' }
const byAccessToken: ExchangeConfig = { ...byIdToken, subjectToken: 'access_token' }

/** An ID token issued at T0 for 120 s, and a login token (60 s) obtained at `obtainedAt`. */
function tokens(obtainedAt: number, extra: Partial<TokenSet> = {}): TokenSet {
  const idToken = new UnsecuredJWT({ sub: 'alice' })
    .setIssuedAt(T0 / 1000)
    .setExpirationTime(T0 / 1000 + 120)
    .encode()
  return {
    accessToken: 'at',
    accessTokenExpiresAt: obtainedAt + 60_000,
    accessTokenLifetime: 60_000,
    refreshToken: 'rt',
    idToken,
    ...extra,
  }
}

const EXPIRED = T0 + 120_000 + ID_TOKEN_CLOCK_TOLERANCE

t.test('an ID token expires its tolerance after its exp; an access token at its expiry', async (t) => {
  const life = subjectLife(tokens(T0), byIdToken)
  t.same(life, { expiresAt: T0 + 120_000, lifetime: 120_000, tolerance: 30_000 })
  t.notOk(subjectExpired(life, EXPIRED - 1))
  t.ok(subjectExpired(life, EXPIRED))
  const access = subjectLife(tokens(T0), byAccessToken)
  t.same(access, { expiresAt: T0 + 60_000, lifetime: 60_000, tolerance: 0 })
  t.ok(subjectExpired(access, T0 + 60_000))
})

t.test('an ID token subject is refreshed for only while a refresh may bring a new one', async (t) => {
  const cases: [string, TokenSet, number, boolean][] = [
    ['not due', tokens(T0), T0 + 114_000, false],
    ['due (5 s before exp), no refresh since login', tokens(T0), T0 + 116_000, true],
    ['expired, no refresh since login', tokens(T0), T0 + 200_000, true],
    ['a refresh since it came due kept it, still presented', tokens(T0 + 116_000), T0 + 149_000, false],
    ['that refresh came before its expiry, which has passed', tokens(T0 + 116_000), EXPIRED, true],
    ['a refresh after its expiry kept it: the IdP sends none', tokens(EXPIRED), EXPIRED + 60_000, false],
    ['arrived due (a gateway clock ahead), still presented', tokens(T0 + 125_000), T0 + 126_000, false],
    [
      'when the login token came is unknown',
      tokens(EXPIRED, { accessTokenLifetime: undefined }),
      EXPIRED,
      true,
    ],
    ['no refresh token', tokens(T0, { refreshToken: undefined }), T0 + 200_000, false],
  ]
  for (const [name, set, now, expected] of cases)
    t.equal(refreshesSubject(set, byIdToken, now, REFRESH_BEFORE), expected, name)
})

t.test('an access token subject is refreshed whenever it is due: every refresh renews it', async (t) => {
  t.notOk(refreshesSubject(tokens(T0), byAccessToken, T0 + 54_000, REFRESH_BEFORE))
  t.ok(refreshesSubject(tokens(T0), byAccessToken, T0 + 55_000, REFRESH_BEFORE))
  t.ok(refreshesSubject(tokens(T0), byAccessToken, T0 + 600_000, REFRESH_BEFORE))
  t.notOk(
    refreshesSubject(tokens(T0, { refreshToken: undefined }), byAccessToken, T0 + 600_000, REFRESH_BEFORE),
  )
})
