import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { apiCall, followLoginFlow, jarFetch, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

t.test('/auth/login passes the allow-listed parameters to the IdP, and only those', async (t) => {
  const stack = await startStack(t)
  const query = new URLSearchParams({
    returnTo: '/',
    prompt: 'login',
    login_hint: 'ivy@example.test',
    ui_locales: 'fr-CA fr',
    acr_values: 'urn:example:loa:2',
    audience: 'https://elsewhere.example',
    scope: 'openid admin',
  })
  const res = await jarFetch(new CookieJar(), `${stack.gateway.url}/auth/login?${query}`)
  t.equal(res.status, 302)
  const sent = new URL(res.location!).searchParams
  t.equal(sent.get('prompt'), 'login', "the SPA's prompt wins over the configured one")
  t.equal(sent.get('login_hint'), 'ivy@example.test')
  t.equal(sent.get('ui_locales'), 'fr-CA fr')
  t.equal(sent.get('acr_values'), 'urn:example:loa:2')
  t.equal(sent.get('audience'), null, 'not in auth.loginParams: dropped')
  t.equal(sent.get('scope'), 'openid profile offline_access', 'protocol parameters stay Gatehouse’s own')

  const plain = await jarFetch(new CookieJar(), `${stack.gateway.url}/auth/login`)
  t.equal(new URL(plain.location!).searchParams.get('prompt'), 'consent', 'authorizationParams apply')
})

t.test(
  'a prompt the IdP does not list in prompt_values_supported gets 400, before any redirect',
  async (t) => {
    // What oidc-provider supports, advertised as Keycloak and Entra ID advertise theirs.
    const stack = await startStack(t, {
      idp: { discovery: { prompt_values_supported: ['none', 'login', 'consent'] } },
    })
    t.same(stack.gateway.app.gatehouse.oidc.metadata!.prompt_values_supported, ['none', 'login', 'consent'])
    const res = await jarFetch(new CookieJar(), `${stack.gateway.url}/auth/login?prompt=select_account`)
    t.equal(res.status, 400)
    t.equal(res.location, undefined)
    t.match(res.text, /prompt=select_account is not supported by the identity provider/)
    const repeated = await jarFetch(
      new CookieJar(),
      `${stack.gateway.url}/auth/login?login_hint=a&login_hint=b`,
    )
    t.equal(repeated.status, 400, 'a repeated parameter is refused')
    const listed = await jarFetch(new CookieJar(), `${stack.gateway.url}/auth/login?prompt=login%20consent`)
    t.equal(listed.status, 302, 'advertised values pass, each of a space-separated list')
  },
)

t.test('auth.loginParams: [] passes nothing through', async (t) => {
  const stack = await startStack(t, { config: { loginParams: [] } })
  const res = await jarFetch(new CookieJar(), `${stack.gateway.url}/auth/login?prompt=login&login_hint=x`)
  const sent = new URL(res.location!).searchParams
  t.equal(sent.get('prompt'), 'consent')
  t.equal(sent.get('login_hint'), null)
})

t.test(
  'prompt=none without an IdP session returns to returnTo with ?error=login_required, no session',
  async (t) => {
    const stack = await startStack(t)
    const base = stack.gateway.url
    const { jar, callback, callbackUrl, responses } = await login(base, {
      returnTo: '/orders?tab=open#top',
      params: { prompt: 'none' },
    })
    t.equal(
      new URL(callbackUrl).searchParams.get('error'),
      'login_required',
      'the IdP answered login_required',
    )
    t.equal(responses.filter((r) => r.status === 200).length, 0, 'no page was shown to the user')
    t.equal(callback.status, 302)
    t.equal(callback.location, `${base}/orders?tab=open&error=login_required#top`)
    t.equal(jar.get(base, 'gatehouse'), undefined, 'no session cookie')
    t.equal((await apiCall(jar, `${base}/auth/user`)).status, 401)
    t.equal(stack.idp.stats.authorizationCodeGrants, 0)
  },
)

t.test('prompt=none with an IdP session signs in silently, without the unrefreshable warning', async (t) => {
  const lines: { level: number }[] = []
  const stack = await startStack(t, {
    config: { logLevel: 'warn' },
    gateway: { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
  })
  const base = stack.gateway.url
  const first = await login(base, { user: 'jo' })
  // Ends the gateway session only: the IdP session (its cookie in the jar) stays.
  const store = stack.gateway.app.gatehouse.stores.sessions
  await store.delete((await store.idsBySub('jo'))[0]!)
  const silent = await login(base, { jar: first.jar, user: 'jo', params: { prompt: 'none' } })
  t.equal(silent.responses.filter((r) => r.status === 200).length, 0, 'no page was shown')
  t.equal(silent.finalLocation, `${base}/`, 'straight back to returnTo')
  const user = (await apiCall(first.jar, `${base}/auth/user`)).json<{ sub: string; refreshable: boolean }>()
  t.equal(user.sub, 'jo', 'a session again')
  t.equal(user.refreshable, false, 'a strict OP grants no offline_access without prompt=consent')
  t.same(
    lines.filter((l) => l.level === 40),
    [],
    'expected of a silent login, so no warning',
  )
})

t.test('other callback errors, and interaction errors with a wrong state, keep the 4xx page', async (t) => {
  const stack = await startStack(t)
  const base = stack.gateway.url
  const callback = async (error: string, goodState: boolean, iss: string | null = stack.idp.issuer) => {
    const jar = new CookieJar()
    const start = await jarFetch(jar, `${base}/auth/login?returnTo=/orders`)
    const state = goodState ? new URL(start.location!).searchParams.get('state')! : 'forged'
    const query = new URLSearchParams({ error, state, ...(iss === null ? {} : { iss }) })
    return jarFetch(jar, `${base}/auth/callback?${query}`)
  }
  const denied = await callback('access_denied', true)
  t.equal(denied.status, 400)
  t.match(denied.text, /access_denied/)
  const forged = await callback('login_required', false)
  t.equal(forged.status, 400, 'the state is checked before the error is believed')
  t.equal(forged.location, undefined)
  // RFC 9207 §2: an IdP that advertises `iss` puts it in error answers too;
  // one from another issuer (a mix-up) or without it is no answer of this one's.
  for (const [iss, said] of [
    ['https://evil.example', 'of another issuer'],
    [null, 'without iss'],
  ] as const) {
    const mixedUp = await callback('login_required', true, iss)
    t.equal(mixedUp.status, 400, `an interaction error ${said} is not believed`)
    t.equal(mixedUp.location, undefined, `and sends the browser nowhere (${said})`)
  }
  const consent = await callback('consent_required', true)
  t.equal(consent.status, 302, 'every OIDC Core §3.1.2.6 error goes back to the SPA')
  t.equal(consent.location, `${base}/orders?error=consent_required`)
})

t.test('followLoginFlow is unaffected: a normal login still shows login and consent', async (t) => {
  const stack = await startStack(t)
  const jar = new CookieJar()
  const start = await jarFetch(jar, `${stack.gateway.url}/auth/login`)
  const responses: Awaited<ReturnType<typeof jarFetch>>[] = []
  await followLoginFlow(jar, start.location!, 'kim', responses)
  t.equal(responses.filter((r) => r.status === 200).length, 2)
})

t.test(
  'a max_age passed through may tighten the configured one, never loosen or drop it, and must be whole seconds',
  async (t) => {
    // The deployment asks every sign-in to have authenticated within 5 minutes,
    // and lets the SPA ask for a fresher one (max_age=0, a step-up).
    const stack = await startStack(t, {
      config: {
        loginParams: ['prompt', 'max_age'],
        oidc: { authorizationParams: { prompt: 'consent', max_age: '300' } },
      },
    })
    const sent = async (query: string) => {
      const res = await jarFetch(new CookieJar(), `${stack.gateway.url}/auth/login?${query}`)
      t.equal(res.status, 302, query)
      return new URL(res.location!).searchParams.get('max_age')
    }
    t.equal(await sent(''), '300', 'the configured max_age applies')
    t.equal(await sent('max_age=0'), '0', 'a stricter one from the SPA wins')
    t.equal(await sent('max_age=86400'), '300', 'a looser one from a link does not lift the configured bound')
    for (const bad of ['5m', '-1', '1.5', '1e3', ' 300', '99999999999']) {
      const res = await jarFetch(
        new CookieJar(),
        `${stack.gateway.url}/auth/login?max_age=${encodeURIComponent(bad)}`,
      )
      t.equal(res.status, 400, `max_age=${JSON.stringify(bad)} is refused`)
      t.equal(res.location, undefined, 'before any redirect')
      t.match(res.text, /max_age must be a whole number of seconds/)
    }
  },
)
