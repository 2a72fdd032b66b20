import t, { type Test } from 'tap'
import { sessionLogId } from '../../src/session/log-id.js'
import { sessionRefOf } from '../helpers/app.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { type Stack, type StackOptions, startStack } from '../helpers/stack.js'

interface UserBody {
  sub: string
  refreshable: boolean
  sessionExpiresAt: string
  claims: Record<string, unknown>
}

/** A stack on a TestClock whose log lines are kept. */
async function stack(t: Test, options: StackOptions) {
  const lines: Record<string, unknown>[] = []
  const clock = new TestClock()
  const s = await startStack(t, {
    ...options,
    config: { logLevel: 'info', ...options.config },
    gateway: {
      now: clock.now,
      logStream: { write: (line: string) => void lines.push(JSON.parse(line)) },
    },
  })
  return { ...s, clock, lines }
}

async function loginsMetric(s: Stack): Promise<string[]> {
  const text = await s.gateway.app.gatehouse.metrics.registry.metrics()
  return text.split('\n').filter((l) => l.startsWith('gatehouse_logins_total{'))
}

t.test(
  'strict IdP without prompt=consent: the login warns once, counts as missing, and the session ends at the first expiry',
  async (t) => {
    const s = await stack(t, { config: { oidc: { authorizationParams: {} } } })
    const base = s.gateway.url
    const { jar, callback, callbackUrl } = await login(base, { user: 'erin' })
    t.equal(callback.status, 302, 'the login itself succeeds')

    const warnings = s.lines.filter((l) => l.level === 40)
    t.equal(warnings.length, 1, 'one warn line')
    t.match(
      warnings[0]!.msg,
      /offline_access was requested but the identity provider issued no refresh token/,
    )
    t.match(warnings[0]!.msg, /prompt: consent/, 'it names the fix for strict OPs')
    t.match(warnings[0]!.msg, /access_type: offline/, 'and for Google')
    const code = new URL(callbackUrl).searchParams.get('code')!
    const store = s.gateway.app.gatehouse.stores.sessions
    const session = (await store.get(
      sessionRefOf(s.gateway.app, jar.get(base, 'gatehouse')!),
      s.clock.now(),
    ))!
    t.notOk(JSON.stringify(warnings).includes(session.tokens.accessToken), 'no token in it')
    t.notOk(JSON.stringify(warnings).includes(code), 'no code in it')

    t.same(await loginsMetric(s), ['gatehouse_logins_total{refresh_token="missing",idp="default"} 1'])
    const user = (await apiCall(jar, `${base}/auth/user`)).json<UserBody>()
    t.equal(user.refreshable, false, '/auth/user says the session cannot be refreshed')
    t.equal(
      Date.parse(user.sessionExpiresAt),
      session.tokens.accessTokenExpiresAt,
      'and that it ends with its access token, not at its idle expiry',
    )

    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'works while the access token lives')
    s.clock.advance(61_000)
    const expired = await apiCall(jar, `${base}/api/orders`)
    t.equal(expired.status, 401)
    t.equal(expired.json().error, 'session_expired', 'and ends with it')
    t.equal(s.idp.stats.refreshGrants, 0)
    t.match(
      s.lines.filter((l) => l.code === 'GATEHOUSE_ERR_SESSION_EXPIRED'),
      [
        {
          level: 30,
          session: sessionLogId(session.id),
          msg: 'session ended: The access token expired and there is no refresh token.',
        },
      ],
      'one line says which session ended, and why',
    )
  },
)

t.test(
  'strict IdP with prompt=consent: a refresh token, no warning, and the session outlives the first access token',
  async (t) => {
    const s = await stack(t, {})
    const base = s.gateway.url
    const { jar } = await login(base, { user: 'fay' })
    t.equal(s.lines.filter((l) => l.level === 40).length, 0, 'no warning')
    t.same(await loginsMetric(s), ['gatehouse_logins_total{refresh_token="issued",idp="default"} 1'])
    t.equal((await apiCall(jar, `${base}/auth/user`)).json<UserBody>().refreshable, true)
    s.clock.advance(61_000)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'past the first expiry')
    t.equal(s.idp.stats.refreshGrants, 1, 'through one refresh')
    t.match(
      s.lines.find((l) => l.msg === 'login completed'),
      { refreshToken: 'issued' },
    )
  },
)

t.test('lenient IdP (Keycloak-like): a refresh token without prompt=consent', async (t) => {
  const s = await stack(t, { idp: { profile: 'lenient' }, config: { oidc: { authorizationParams: {} } } })
  const base = s.gateway.url
  const { jar } = await login(base, { user: 'gus' })
  t.equal(s.lines.filter((l) => l.level === 40).length, 0, 'no warning')
  t.equal((await apiCall(jar, `${base}/auth/user`)).json<UserBody>().refreshable, true)
  s.clock.advance(61_000)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'past the first expiry')
  t.equal(s.idp.stats.refreshGrants, 1)
})

t.test('no offline_access requested: no refresh token is expected, so no warning', async (t) => {
  const s = await stack(t, { config: { oidc: { authorizationParams: {}, scopes: ['openid', 'profile'] } } })
  const { jar } = await login(s.gateway.url, { user: 'hal' })
  t.equal(s.lines.filter((l) => l.level === 40).length, 0)
  t.equal((await apiCall(jar, `${s.gateway.url}/auth/user`)).json<UserBody>().refreshable, false)
  t.same(await loginsMetric(s), ['gatehouse_logins_total{refresh_token="missing",idp="default"} 1'])
})
