/**
 * A real oidc-provider whose discovery document alone is wrong
 * (quirks.discoveryDocument). oauth4webapi checks an endpoint only when it
 * calls it, so a document naming one as no URL was discovered fine and
 * `/readyz` said ready: a `token_endpoint` that was a number failed every
 * sign-in with a 400 once the user had signed in at the IdP, a
 * `userinfo_endpoint` the same, and a `revocation_endpoint` failed every
 * logout's revocation as an IdP outage. A required one now refuses the
 * document, naming it, wherever discovery is reported; an optional one is
 * read as not advertised, with a warning naming it.
 */
import { SignJWT } from 'jose'
import t from 'tap'
import type { DevIdpQuirks } from '../../dev/idp.js'
import { checkOnline, devIdpForCheck } from '../helpers/check-online.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID } from '../helpers/gateway.js'
import { jarFetch, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

type Rewrite = NonNullable<DevIdpQuirks['discoveryDocument']>
const WARNING = 'the identity provider advertises a discovery member of the wrong shape'

t.test('a revocation_endpoint that is a number: not advertised, and logout does without it', async (t) => {
  const lines: Record<string, unknown>[] = []
  const stack = await startStack(t, {
    idp: { quirks: { discoveryDocument: (doc) => ({ ...doc, revocation_endpoint: 7009 }) } },
    config: { logLevel: 'info', oidc: { scopes: ['openid', 'offline_access'] } },
    gateway: { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
  })
  t.match(
    lines.filter((line) => line.msg === WARNING),
    [{ reason: /revocation_endpoint as a number; read as not advertised \(RFC 7009/ }],
  )
  t.ok(
    lines.some((line) => /advertises no revocation_endpoint/.test(String(line.msg))),
    'the line an IdP without one gets',
  )
  const { jar, callback } = await login(stack.gateway.url)
  t.equal(callback.status, 302)
  const user = await jarFetch(jar, `${stack.gateway.url}/auth/user`, { headers: { 'x-csrf': '1' } })
  const logout = await jarFetch(jar, `${stack.gateway.url}${user.json<{ logoutUrl: string }>().logoutUrl}`)
  t.equal(logout.status, 200, 'on to the end-session page')
  t.notOk(
    lines.some((line) => line.msg === 'refresh token revocation failed'),
    'no revocation was tried, so none failed as an outage',
  )
})

t.test('a userinfo_endpoint that is an object: not advertised, and sign-in completes', async (t) => {
  const lines: Record<string, unknown>[] = []
  const stack = await startStack(t, {
    idp: { quirks: { discoveryDocument: (doc) => ({ ...doc, userinfo_endpoint: { url: 'x' } }) } },
    config: { logLevel: 'info' },
    gateway: { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
  })
  t.match(
    lines.filter((line) => line.msg === WARNING),
    [{ reason: /userinfo_endpoint as an object; read as not advertised/ }],
  )
  t.equal((await login(stack.gateway.url)).callback.status, 302)
})

for (const [shape, rewrite, reason] of [
  [
    'missing',
    (doc) => {
      const { token_endpoint: _, ...rest } = doc
      return rest
    },
    /advertises no token_endpoint/,
  ],
  ['a number', (doc) => ({ ...doc, token_endpoint: 42 }), /advertises token_endpoint as a number/],
  [
    'on a host other than loopback over plain http',
    (doc) => ({ ...doc, token_endpoint: 'http://idp.example/token' }),
    /token_endpoint "http:\/\/idp\.example\/token", which is neither https nor plain http on a loopback host/,
  ],
] as [string, Rewrite, RegExp][]) {
  t.test(`a token_endpoint ${shape}: the document is refused, and everything says why`, async (t) => {
    const lines: Record<string, unknown>[] = []
    let failed: () => void
    const refused = new Promise<void>((resolve) => {
      failed = resolve
    })
    const gateway = await startStack(t, {
      idp: { quirks: { discoveryDocument: rewrite } },
      gateway: {
        logStream: {
          write: (line: string) => {
            const parsed = JSON.parse(line)
            lines.push(parsed)
            if (parsed.msg === 'OpenID Provider discovery failed; retrying') failed()
          },
        },
      },
      config: { logLevel: 'info' },
      awaitDiscovery: false,
    })
    await Promise.race([
      refused,
      gateway.gateway.app.gatehouse.whenDiscovered().then(() => t.fail('discovered')),
    ])
    t.match(
      lines.find((line) => line.msg === 'OpenID Provider discovery failed; retrying'),
      { reason },
      'the log names the member',
    )
    const base = gateway.gateway.url
    const ready = await jarFetch(new CookieJar(), `${base}/readyz`)
    t.equal(ready.status, 503, 'not ready')
    t.match(ready.json(), { checks: { idp: /^not discovered: the identity provider advertises / } })
    t.match(ready.json<{ checks: { idp: string } }>().checks.idp, reason, '/readyz names the member')
    const start = await jarFetch(new CookieJar(), `${base}/auth/login`)
    t.equal(start.status, 503, 'sign-in is refused before the user signs in at the IdP')
    t.match(start.text, /its discovery document was refused \(the identity provider advertises/)
    t.match(start.text.replaceAll('&quot;', '"'), reason, 'and so does the sign-in page')

    const idp = await devIdpForCheck(t, { quirks: { discoveryDocument: rewrite } })
    const check = await checkOnline(idp.issuer)
    t.equal(check.code, 1)
    t.match(check.err, reason, 'check --online names it')
  })
}

t.test(
  "no jwks_uri: sign-in works, and a logout token is refused as the IdP's to fix, not as an outage",
  async (t) => {
    const lines: Record<string, unknown>[] = []
    const stack = await startStack(t, {
      idp: {
        quirks: {
          discoveryDocument: (doc) => {
            const { jwks_uri: _, ...rest } = doc
            return rest
          },
        },
      },
      config: { logLevel: 'info' },
      gateway: { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
    })
    t.match(
      lines.find((line) => /advertises no jwks_uri/.test(String(line.msg))),
      { level: 40, msg: /back-channel logout tokens cannot be verified/ },
      'said once, at discovery',
    )
    t.equal((await login(stack.gateway.url)).callback.status, 302)
    const token = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(stack.idp.issuer)
      .setAudience(CLIENT_ID)
      .sign(new TextEncoder().encode('k'.repeat(32)))
    const answer = await jarFetch(new CookieJar(), `${stack.gateway.url}/auth/backchannel-logout`, {
      method: 'POST',
      body: new URLSearchParams({ logout_token: token }),
    })
    t.equal(answer.status, 503)
    t.match(answer.json(), { error: 'idp_incompatible', message: /advertises no jwks_uri/ })
  },
)
