/**
 * `/auth/user`'s `claims.iss` is what tells apart the users of several
 * providers (README), and the ID token's `iss` is checked against the
 * configured issuer (OIDC Core §3.1.3.7 item 2). A plain JSON userinfo
 * answer is signed by nothing and its `iss` checked by no one (§5.3.2
 * asks only that its `sub` match), and its claims are merged over the ID
 * token's: until 2026-12-08 a provider of the list could answer userinfo
 * with another provider's issuer, and its user was shown to the SPA as
 * that provider's user of the same `sub`.
 */
import t from 'tap'
import { apiCall, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

const ANOTHER_ISSUER = 'https://corp.idp.example'

interface UserBody {
  readonly idp: string
  readonly sub: string
  readonly claims: Record<string, unknown>
}

for (const profileClaims of ['id_token', 'userinfo'] as const) {
  t.test(
    `a userinfo iss of another issuer (profile claims in ${profileClaims}): /auth/user keeps the ID token's`,
    async (t) => {
      const stack = await startStack(t, {
        idp: { profileClaims, userinfoOverrides: { iss: ANOTHER_ISSUER, locale: 'fr-FR' } },
      })
      const base = stack.gateway.url
      const { jar, callback } = await login(base, { user: 'una' })
      t.equal(callback.status, 302, 'signed in')
      const user = (await apiCall(jar, `${base}/auth/user`)).json<UserBody>()
      t.equal(user.claims.iss, stack.idp.issuer, 'iss is the issuer the ID token was checked against')
      t.equal(user.claims.sub, 'una')
      t.equal(
        user.claims.locale,
        'fr-FR',
        "userinfo's other claims still win over the ID token's (OIDC Core §5.3.2)",
      )
    },
  )
}
