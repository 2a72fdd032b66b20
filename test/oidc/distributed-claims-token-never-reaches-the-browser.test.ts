/**
 * OIDC Core §5.6.2: an OP may answer a claim as a reference to another
 * claims provider, `_claim_names` naming the source of each and
 * `_claim_sources` the sources: an aggregated one carries a signed JWT, a
 * distributed one an `endpoint` and the `access_token` to call it with.
 * That token is a bearer credential, and the session's claims go to the
 * SPA at `/auth/user`: until 2026-12-08 both members were kept as claims,
 * so the browser was handed the token (RFC 10017 §6.1: no token reaches
 * it). The real oidc-provider releases them, in the ID token or at
 * userinfo, for the claims the scopes grant.
 */
import t from 'tap'
import { apiCall, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

const CLAIMS_TOKEN = 'claims-provider-access-token-0123456789'

/** `locale` distributed, `name` aggregated: both are profile claims the test client is granted. */
const referencedClaims = () => ({
  _claim_names: { locale: 'src1', name: 'src2' },
  _claim_sources: {
    src1: { endpoint: 'https://claims.example/locale', access_token: CLAIMS_TOKEN },
    src2: { JWT: 'eyJhbGciOiJub25lIn0.eyJuYW1lIjoiQWdncmVnYXRlZCJ9.' },
  },
})

interface UserBody {
  readonly sub: string
  readonly claims: Record<string, unknown>
}

for (const profileClaims of ['id_token', 'userinfo'] as const) {
  t.test(
    `claims referenced through ${profileClaims}: /auth/user hands over no claims provider's token`,
    async (t) => {
      const stack = await startStack(t, { idp: { profileClaims, accountClaims: referencedClaims } })
      const base = stack.gateway.url
      const { jar, callback } = await login(base, { user: 'rita' })
      t.equal(callback.status, 302, 'signed in')
      const answer = await apiCall(jar, `${base}/auth/user`)
      t.equal(answer.status, 200)
      t.notMatch(answer.text, CLAIMS_TOKEN, "the claims provider's access token is not in the answer")
      const { claims } = answer.json<UserBody>()
      t.notOk('_claim_sources' in claims, 'no _claim_sources')
      t.notOk('_claim_names' in claims, 'no _claim_names: they name sources the SPA is not given')
      t.equal(claims.sub, 'rita', 'the claims of the user are still there')
      t.equal(claims.locale, 'en-GB')
    },
  )
}

t.test('session.claims naming _claim_sources still keeps no token of it', async (t) => {
  const stack = await startStack(t, {
    idp: { accountClaims: referencedClaims },
    config: { claims: ['name', '_claim_names', '_claim_sources'] },
  })
  const base = stack.gateway.url
  const { jar } = await login(base, { user: 'sam' })
  const answer = await apiCall(jar, `${base}/auth/user`)
  t.equal(answer.status, 200)
  t.notMatch(answer.text, CLAIMS_TOKEN, "the claims provider's access token is not in the answer")
  t.same(
    answer.json<UserBody>().claims,
    { name: 'Sam', _claim_names: { locale: 'src1', name: 'src2' } },
    'the listed claims, but not the sources',
  )
})
