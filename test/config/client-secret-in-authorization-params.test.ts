import t from 'tap'
import { CONFIG_ENV, configProblems } from '../helpers/config-problems.js'

/*
 * `authorizationParams: { client_secret: ${OIDC_CLIENT_SECRET} }`, as a
 * provider's "pass the secret as a parameter" advice read wrongly, loaded:
 * every sign-in then put the client secret into the authorization URL the
 * browser is redirected to (without PAR), into its address bar, history and
 * the IdP's access log. Client authentication belongs at the token endpoint
 * (RFC 6749 §2.3.1: "MUST NOT be included in the request URI"), where
 * clientAuth sends it.
 */
const withParams = (params: string) => `server: { publicUrl: https://app.example.com }
oidc:
  issuer: https://idp.example.com
  clientId: bff
  clientSecret: \${OIDC_CLIENT_SECRET}
  authorizationParams:
${params}session: { secret: "\${SESSION_SECRET}" }
routes:
  - { path: /api, upstream: "http://api:8080" }
`

/** Its problems, or none when it loads, so that each case is its own assertion. */
const problems = (text: string) => {
  try {
    return configProblems(text, CONFIG_ENV)
  } catch {
    return []
  }
}

const refused = (line: number, name: string) =>
  `${line} oidc.authorizationParams.${name}: is client authentication, which clientAuth sends to the token endpoint; an authorization request goes through the browser, in its address bar and history (RFC 6749 §2.3.1): remove it`

t.test(
  'client authentication in authorizationParams is refused at its line, its value never quoted',
  async (t) => {
    for (const name of ['client_secret', 'client_assertion', 'client_assertion_type']) {
      const found = problems(withParams(`    prompt: consent\n    ${name}: \${OIDC_CLIENT_SECRET}\n`))
      t.same(found, [refused(8, name)], name)
      t.notMatch(found.join('\n'), CONFIG_ENV.OIDC_CLIENT_SECRET, `${name}: the secret is not quoted`)
    }
  },
)
