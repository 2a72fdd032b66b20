import t, { type Test } from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { endSessionsOf, startScriptedStack } from '../helpers/scripted-stack.js'
import { rawCall } from '../helpers/scripted-upstream.js'

/** Everything a compromised upstream might try, each spelling of our names (a sign-in's too) and one cookie of its own. */
const HOSTILE = [
  'gatehouse=attacker-sealed-cookie; Path=/api',
  'gatehouse=; Max-Age=0; Path=/',
  '__Host-gatehouse=attacker; Path=/; Secure',
  '__SECURE-gatehouse=attacker; Path=/; Secure',
  'GATEHOUSE-login=attacker; Path=/',
  'gatehouse-login=attacker',
  'gatehouse-login.AbCdEfGhIjKlMnOp=; Max-Age=0; Path=/',
  '__Host-Http-Gatehouse-Login.x=attacker; Path=/; Secure',
  ' gatehouse =attacker; Path=/',
  'gatehouse\t=attacker',
  '=gatehouse=attacker; Path=/',
  'gatehouse',
  'app_pref=1; Path=/',
]

async function setup(t: Test) {
  const lines: string[] = []
  const started = await startScriptedStack(
    t,
    (upstream) => [
      route('/api/user', upstream),
      route('/api/maybe', upstream, { token: 'optional-user' }),
      route('/api/client', upstream, { token: 'client', scopes: ['reports.read'] }),
      route('/api/public', upstream, { token: 'none', csrf: false }),
      route('/api/wipe', upstream, { token: 'none', allowClearSiteData: true }),
    ],
    {
      config: { logLevel: 'warn' },
      gateway: { logStream: { write: (line: string) => lines.push(line) } },
    },
  )
  started.upstream.answer((res) => {
    res.setHeader('set-cookie', HOSTILE)
    res.setHeader('clear-site-data', '"cookies"')
    res.end('ok')
  })
  return { ...started, lines }
}

t.test(
  "an upstream's Set-Cookie for a gateway cookie never reaches the client; its own cookies do",
  async (t) => {
    const { base, upstream } = await setup(t)
    const { jar } = await login(base)
    for (const path of ['/api/user/x', '/api/maybe/x', '/api/client/x', '/api/public/x']) {
      const before = upstream.seen.length
      const res = await apiCall(jar, `${base}${path}`)
      t.equal(res.status, 200, path)
      t.equal(upstream.seen.length, before + 1, `${path} reached the upstream`)
      t.same(res.headers.getSetCookie(), ['app_pref=1; Path=/'], `${path}: only app_pref`)
      t.equal(res.headers.get('clear-site-data'), null, `${path}: Clear-Site-Data dropped`)
    }
    const anonymous = await rawCall(`${base}/api/public/x`, {})
    t.same(anonymous.headers['set-cookie'], ['app_pref=1; Path=/'], 'without a session too')

    const me = await apiCall(jar, `${base}/auth/user`)
    t.equal(me.status, 200, "the victim's session still works")
    t.equal(me.json<{ sub: string }>().sub, 'alice')
    t.equal(
      jar.header(`${base}/api/user/x`)?.match(/gatehouse=/g)?.length,
      1,
      'one session cookie in the jar',
    )
    const call = await apiCall(jar, `${base}/api/user/orders`)
    t.equal(call.status, 200)
    t.match(upstream.seen.at(-1)!.headers.authorization, /^Bearer /, "the API still gets the victim's token")
  },
)

t.test(
  'the same holds on answers sent through Fastify, as when the session cookie must change',
  async (t) => {
    const { base, stack } = await setup(t)
    const { jar } = await login(base)
    await endSessionsOf(stack, jar)

    const res = await apiCall(jar, `${base}/api/maybe/x`)
    t.equal(res.status, 200)
    const cookies = res.headers.getSetCookie()
    const clearing = cookies.filter((line) => line.startsWith('gatehouse=;'))
    t.equal(clearing.length, 1, "only the gateway's own clearing of the dead cookie")
    t.match(
      clearing[0],
      /Expires=Thu, 01 Jan 1970/i,
      'which is the gateway’s (the upstream’s says Max-Age=0)',
    )
    t.same(
      cookies.filter((line) => !line.startsWith('gatehouse=;')),
      ['app_pref=1; Path=/'],
      "none of the upstream's gateway-named cookies, and its own app_pref, passed",
    )
    t.equal(res.headers.get('clear-site-data'), null)
  },
)

t.test('a route that allows Clear-Site-Data passes it on', async (t) => {
  const { base } = await setup(t)
  const res = await rawCall(`${base}/api/wipe/x`, {})
  t.equal(res.headers['clear-site-data'], '"cookies"')
  t.same(res.headers['set-cookie'], ['app_pref=1; Path=/'], 'cookie hygiene still applies')
})

t.test('dropped cookies are counted per route and warned about once a minute, without values', async (t) => {
  const { base, lines, stack } = await setup(t)
  await rawCall(`${base}/api/public/a`, {})
  await rawCall(`${base}/api/public/b`, {})
  await rawCall(`${base}/api/wipe/c`, {})
  const warnings = lines.filter((line) => line.includes("the gateway's own cookie"))
  t.equal(warnings.length, 2, 'one line per route, however many answers')
  t.notOk(
    warnings.some((line) => line.includes('attacker')),
    'no cookie value in the log',
  )
  t.match(warnings[0], /"route":"\/api\/public"/)
  const metrics = await stack.gateway.app.gatehouse.metrics.registry.metrics()
  const dropped = HOSTILE.length - 1
  t.match(metrics, `gatehouse_upstream_cookies_dropped_total{route="/api/public"} ${2 * dropped}`)
  t.match(metrics, `gatehouse_upstream_cookies_dropped_total{route="/api/wipe"} ${dropped}`)
})
