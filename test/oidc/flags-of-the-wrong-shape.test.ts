/**
 * The booleans of a discovery document sent as something else. oauth4webapi
 * requires RFC 9207's `iss` in the authorization response whenever
 * `authorization_response_iss_parameter_supported` is any JavaScript truth:
 * a string `"false"` from an IdP that sends no `iss` failed every sign-in
 * with a 400 after the user had signed in, while `/readyz` said ready and
 * `check --online` and the FAPI 2.0 checks read it as no. Each flag of the
 * wrong shape is now read as not advertised (false), with a warning.
 */
import t from 'tap'
import type { DevIdpQuirks } from '../../dev/idp.js'
import { checkOnline, devIdpForCheck } from '../helpers/check-online.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { jarFetch, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

const WARNING = 'the identity provider advertises a discovery member of the wrong shape'

for (const value of ['false', 1, {}]) {
  const quirks: DevIdpQuirks = {
    noIssParameter: true,
    discoveryDocument: (doc) => ({ ...doc, authorization_response_iss_parameter_supported: value }),
  }
  t.test(
    `authorization_response_iss_parameter_supported: ${JSON.stringify(value)}, and no iss sent`,
    async (t) => {
      const lines: Record<string, unknown>[] = []
      const stack = await startStack(t, {
        idp: { quirks },
        config: { logLevel: 'info' },
        gateway: { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
      })
      t.match(
        lines.filter((line) => line.msg === WARNING).map((line) => line.reason),
        [
          /authorization_response_iss_parameter_supported as an? \w+, not a boolean \(RFC 9207 §3\); read as not advertised/,
        ],
      )
      t.equal((await jarFetch(new CookieJar(), `${stack.gateway.url}/readyz`)).status, 200)
      const { callback } = await login(stack.gateway.url)
      t.equal(callback.status, 302, 'sign-in completes, as at an IdP that does not advertise iss')

      const idp = await devIdpForCheck(t, { quirks })
      const check = await checkOnline(idp.issuer)
      t.match(check.out, /^RFC 9207 iss in responses\s+checked when advertised\s+no\s+warn$/m)
      t.match(
        check.out,
        /hint: the identity provider advertises authorization_response_iss_parameter_supported as/,
      )
    },
  )
}

t.test(
  'require_pushed_authorization_requests: "true" is read as false, by the gateway and the check alike',
  async (t) => {
    const quirks: DevIdpQuirks = {
      discoveryDocument: (doc) => ({ ...doc, require_pushed_authorization_requests: 'true' }),
    }
    const stack = await startStack(t, { idp: { quirks }, config: { oidc: { par: 'off' } } })
    t.equal((await jarFetch(new CookieJar(), `${stack.gateway.url}/readyz`)).status, 200)
    const idp = await devIdpForCheck(t, { quirks })
    const check = await checkOnline(idp.issuer, '  clientSecret: s3cret\n  par: "off"')
    t.equal(check.code, 0)
    t.match(
      check.out,
      /hint: the identity provider advertises require_pushed_authorization_requests as a string, not a boolean \(RFC 9126 §5\)/,
    )
  },
)
