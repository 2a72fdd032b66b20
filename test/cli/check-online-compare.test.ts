/**
 * `compare()` against discovery documents our test IdP cannot be made to
 * publish: the bare RFC 8414 minimum, providers that require PAR, and the
 * provider-specific hints. The documents are data; check-online.test.ts
 * runs the whole command against a real oidc-provider.
 */
import type * as oauth from 'oauth4webapi'
import t from 'tap'
import { compare, formatReport } from '../../src/cli/check-online.js'
import type { GatehouseConfig } from '../../src/config/types.js'
import { dpopIncompatibility } from '../../src/oidc/dpop.js'
import { type TestConfigInput, testConfig } from '../helpers/gateway.js'

const ISSUER = 'https://idp.example'

/** A gateway on the IdP's site, as the default POST logout needs (check-online-cross-site-logout.test.ts). */
function config(oidc: TestConfigInput['oidc'] = {}, issuer = ISSUER): GatehouseConfig {
  return testConfig({
    port: 3000,
    publicUrl: `https://app.${new URL(issuer).hostname}`,
    issuer,
    routes: [],
    oidc,
  })
}

/** What an IdP that lists everything Gatehouse uses advertises. */
const complete: oauth.AuthorizationServer = {
  issuer: ISSUER,
  authorization_endpoint: `${ISSUER}/auth`,
  token_endpoint: `${ISSUER}/token`,
  scopes_supported: ['openid', 'offline_access'],
  grant_types_supported: ['authorization_code', 'refresh_token'],
  code_challenge_methods_supported: ['S256'],
  token_endpoint_auth_methods_supported: ['client_secret_basic', 'private_key_jwt'],
  revocation_endpoint: `${ISSUER}/revoke`,
  end_session_endpoint: `${ISSUER}/logout`,
  backchannel_logout_supported: true,
  userinfo_endpoint: `${ISSUER}/me`,
  pushed_authorization_request_endpoint: `${ISSUER}/par`,
  authorization_response_iss_parameter_supported: true,
  prompt_values_supported: ['none', 'login', 'consent'],
  id_token_signing_alg_values_supported: ['RS256'],
}

const verdicts = (report: ReturnType<typeof compare>) =>
  Object.fromEntries(report.rows.map((r) => [r.capability, r.verdict]))

t.test('an IdP that lists everything: every row ok, no hints, not blocking', async (t) => {
  const report = compare(config({ scopes: ['openid', 'offline_access'] }), complete)
  t.same(
    Object.entries(verdicts(report)).filter(([, v]) => v !== 'ok'),
    [],
  )
  t.same(report.hints, [])
  t.equal(report.blocking, false)
})

t.test('the bare RFC 8414 minimum: its defaults are read, and each gap gets a hint', async (t) => {
  const bare: oauth.AuthorizationServer = {
    issuer: ISSUER,
    authorization_endpoint: `${ISSUER}/auth`,
    token_endpoint: `${ISSUER}/token`,
  }
  const report = compare(config({ scopes: ['openid', 'offline_access'] }), bare)
  const v = verdicts(report)
  t.equal(v['refresh tokens'], 'warn', 'no grant_types_supported means no refresh_token grant (RFC 8414 §2)')
  t.match(
    report.rows.find((r) => r.capability === 'refresh tokens')?.advertised,
    /not listed \(no scopes_supported\)/,
  )
  t.equal(v['client authentication'], 'ok', 'no list means client_secret_basic (RFC 8414 §2)')
  t.equal(v['PKCE S256'], 'warn')
  t.equal(v['revocation (RFC 7009)'], 'warn')
  t.equal(v['end-session (RP-Initiated Logout)'], 'warn')
  t.equal(v['back-channel logout'], 'warn')
  t.equal(v.userinfo, 'ok', 'userinfo is used only if advertised')
  t.equal(v['RFC 9207 iss in responses'], 'warn')
  t.match(report.hints.join('\n'), /refresh_token grant/)
  t.match(report.hints.join('\n'), /S256/)
  t.match(report.hints.join('\n'), /revocation_endpoint/)
  t.match(
    report.hints.join('\n'),
    /does not advertise backchannel_logout_supported: if it sends logout tokens all the same \(Glewlwyd 2\.7 does, without saying so\), register https?:\/\/\S+\/auth\/backchannel-logout as the client's backchannel_logout_uri/,
    'the back-channel row says a provider may send logout tokens without advertising it',
  )
  t.equal(report.blocking, false, 'gaps, but a login still works')
})

t.test('without offline_access, refresh and revocation are not needed', async (t) => {
  const { revocation_endpoint: _, ...noRevocation } = complete
  const report = compare(config({ scopes: ['openid'] }), {
    ...noRevocation,
    grant_types_supported: ['authorization_code'],
  })
  const v = verdicts(report)
  t.equal(v['refresh tokens'], '-')
  t.equal(v['revocation (RFC 7009)'], 'ok')
  t.same(report.hints, [], 'no consent, grant or revocation hint')
})

t.test('a client authentication method the IdP does not list is blocking', async (t) => {
  const report = compare(config({ scopes: ['openid'] }), {
    ...complete,
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
  })
  t.equal(verdicts(report)['client authentication'], 'BLOCKING')
  t.equal(report.blocking, true)
  t.match(formatReport(ISSUER, report).at(-1), /^FAIL: /)
})

t.test('a prompt the IdP does not list: warn, and a hint naming it', async (t) => {
  const report = compare(config({ authorizationParams: { prompt: 'consent select_account' } }), complete)
  t.equal(verdicts(report)['prompt (authorizationParams)'], 'warn')
  t.match(report.hints.join('\n'), /prompt: select_account is not in prompt_values_supported/)
  const listed = compare(config({ authorizationParams: { prompt: 'consent' } }), complete)
  t.equal(verdicts(listed)['prompt (authorizationParams)'], 'ok')
})

t.test('PAR: blocking when one side requires it and the other cannot', async (t) => {
  const { pushed_authorization_request_endpoint: _, ...noPar } = complete
  const required = compare(config({ par: 'required' }), noPar)
  t.equal(verdicts(required)['PAR (RFC 9126)'], 'BLOCKING')
  t.equal(required.blocking, true)

  const idpRequires = { ...complete, require_pushed_authorization_requests: true }
  const off = compare(config({ par: 'off' }), idpRequires)
  t.equal(verdicts(off)['PAR (RFC 9126)'], 'BLOCKING')
  t.match(off.hints.join('\n'), /set oidc\.par: auto/)
  t.match(off.rows.find((r) => r.capability === 'PAR (RFC 9126)')?.advertised, 'required')

  t.equal(verdicts(compare(config({ par: 'auto' }), idpRequires))['PAR (RFC 9126)'], 'ok')
  t.equal(verdicts(compare(config({ par: 'auto' }), noPar))['PAR (RFC 9126)'], 'ok', 'auto falls back')
  // RFC 9126 §5: an IdP that requires PAR and names no endpoint to push to refuses every sign-in.
  const stuck = compare(config({ par: 'auto' }), { ...noPar, require_pushed_authorization_requests: true })
  t.equal(verdicts(stuck)['PAR (RFC 9126)'], 'BLOCKING', 'as /readyz says (oidc/par.ts)')
  t.match(stuck.hints.join('\n'), /requires pushed authorization requests but advertises no usable/)
})

t.test('userinfo: required but absent warns; turned off is not compared', async (t) => {
  const { userinfo_endpoint: _, ...noUserinfo } = complete
  t.equal(verdicts(compare(config({ userinfo: true }), noUserinfo)).userinfo, 'warn')
  t.equal(verdicts(compare(config({ userinfo: false }), noUserinfo)).userinfo, '-')
  t.equal(verdicts(compare(config({ userinfo: true }), complete)).userinfo, 'ok')
})

t.test('provider hints: Google offline access, Auth0 audience', async (t) => {
  const google = 'https://accounts.google.com'
  const hints = (oidc: TestConfigInput['oidc'], issuer: string) =>
    compare(config(oidc, issuer), { ...complete, issuer }).hints.join('\n')
  t.match(hints({}, google), /Google: add authorizationParams\.access_type: offline/)
  t.notMatch(hints({ authorizationParams: { prompt: 'consent', access_type: 'offline' } }, google), /Google/)
  const auth0 = 'https://tenant.eu.auth0.com'
  t.match(hints({}, auth0), /Auth0: without authorizationParams\.audience/)
  t.notMatch(hints({ authorizationParams: { prompt: 'consent', audience: 'https://api' } }, auth0), /Auth0/)
})

t.test('the table: one line per row, columns aligned, the verdict last', async (t) => {
  const report = compare(config({ scopes: ['openid'] }), complete)
  const lines = formatReport(ISSUER, report)
  t.equal(lines[0], `IdP: ${ISSUER}`)
  const table = lines.slice(1, 2 + report.rows.length)
  const needAt = table[0]!.indexOf('config needs')
  t.ok(needAt > 0)
  for (const [i, row] of report.rows.entries()) {
    t.ok(table[i + 1]!.slice(needAt).startsWith(row.need), `${row.capability}: the need column lines up`)
    t.ok(table[i + 1]!.endsWith(row.verdict))
  }
  t.equal(lines.at(-1), 'OK: no blocking mismatch.')
})

t.test('DPoP: the algorithm against dpop_signing_alg_values_supported; none listed warns', async (t) => {
  const withAlgs = { ...complete, dpop_signing_alg_values_supported: ['ES256', 'EdDSA'] }
  t.equal(verdicts(compare(config(), withAlgs))['DPoP (RFC 9449)'], undefined, 'not compared when off')
  const ok = compare(config({ dpop: true }), withAlgs)
  t.equal(verdicts(ok)['DPoP (RFC 9449)'], 'ok')
  t.equal(ok.rows.find((r) => r.capability === 'DPoP (RFC 9449)')?.advertised, 'ES256, EdDSA')
  const refused = compare(config({ dpop: true, dpopAlgorithm: 'PS256' }), withAlgs)
  t.equal(verdicts(refused)['DPoP (RFC 9449)'], 'BLOCKING')
  t.equal(refused.blocking, true)
  t.match(refused.hints.join('\n'), /dpopAlgorithm .*ES256, EdDSA/)
  const unlisted = compare(config({ dpop: true }), complete)
  t.equal(verdicts(unlisted)['DPoP (RFC 9449)'], 'warn')
  t.equal(unlisted.blocking, false)
  // RFC 8414 §3.2 omits a list with no element, but an IdP may still send one: it lists none.
  const empty = { ...complete, dpop_signing_alg_values_supported: [] }
  const none = compare(config({ dpop: true }), empty)
  t.equal(verdicts(none)['DPoP (RFC 9449)'], 'BLOCKING', 'as /readyz says (oidc/dpop.ts)')
  t.equal(none.rows.find((r) => r.capability === 'DPoP (RFC 9449)')?.advertised, 'none (an empty list)')
  t.match(none.hints.join('\n'), /lists no algorithm at all/)
  t.notMatch(none.hints.join('\n'), /supports: \./, 'no hint that ends in nothing')
  t.equal(
    dpopIncompatibility(config({ dpop: true }).oidc, empty),
    "dpopAlgorithm: ES256, but the identity provider's dpop_signing_alg_values_supported is an empty list: it takes no DPoP proof",
  )
})

t.test(
  'no id_token_signing_alg_values_supported: a hint that only RS256 is taken (OIDC Core §3.1.3.7)',
  async (t) => {
    const { id_token_signing_alg_values_supported: _, ...withoutList } = complete
    const report = compare(config({ scopes: ['openid', 'offline_access'] }), withoutList)
    t.match(report.hints, [/lists no id_token_signing_alg_values_supported .*only signed RS256/])
    t.equal(report.blocking, false, 'an IdP that signs RS256 signs users in')
  },
)

t.test(
  'Entra ID with userinfo on: a hint to turn it off, as its userinfo is Microsoft Graph’s',
  async (t) => {
    const entra = 'https://login.microsoftonline.com/0b7c3d1e-0000-4000-8000-000000000000/v2.0'
    const as = {
      ...complete,
      issuer: entra,
      userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
      end_session_endpoint: `${entra}/logout`,
    }
    const on = compare(config({ scopes: ['openid', 'offline_access'] }, entra), as)
    t.match(on.hints, [/Entra ID: .*set oidc.userinfo: false/])
    const off = compare(config({ scopes: ['openid', 'offline_access'], userinfo: false }, entra), as)
    t.same(off.hints, [], 'userinfo: false, nothing to say')
  },
)
