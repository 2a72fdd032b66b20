import secureSession from '@fastify/secure-session'
import fastify from 'fastify'
import t from 'tap'
import { OwnCookies } from '../../src/proxy/own-cookies.js'
import {
  type CookieParser,
  type HeaderRewriteOptions,
  headerRewriter,
  stripCookies,
} from '../../src/proxy/request-headers.js'

/** The parser the session plugin reads cookies with: the one the filter must agree with. */
async function sessionParser(): Promise<CookieParser> {
  const app = fastify()
  await app.register(secureSession, { key: Buffer.alloc(32, 1), cookieName: 'gh' })
  await app.ready()
  return (header) => app.parseCookie(header)
}

t.test('stripCookies removes only the gateway cookies', async (t) => {
  const parse = await sessionParser()
  const own = new OwnCookies(['__Host-gatehouse', '__Host-gatehouse-login'])
  const strip = (header: string | undefined) => stripCookies(header, own, parse)
  t.equal(strip(undefined), undefined)
  t.equal(strip('__Host-gatehouse=abc'), undefined)
  t.equal(strip('a=1; __Host-gatehouse=abc; b=2'), 'a=1; b=2')
  t.equal(strip('__Host-gatehouse-login=x;theme=dark'), 'theme=dark')
  t.equal(strip('__Host-gatehouse-other=x'), '__Host-gatehouse-other=x', 'prefix match is not enough')
  const foreign = 'theme=dark; lang=en'
  t.equal(strip(foreign), foreign, 'a header with none of ours passes as it came')
  t.equal(strip('x__Host-gatehouse=1'), 'x__Host-gatehouse=1', 'a name that only contains ours stays')
})

t.test(
  'with __Host-Http- names, the name before it (still in browsers after an upgrade) is ours too',
  async (t) => {
    const parse = await sessionParser()
    const own = new OwnCookies(
      ['__Host-Http-gatehouse', '__Host-Http-gatehouse-login'],
      ['__Host-Http-gatehouse-login.'],
    )
    const strip = (header: string) => stripCookies(header, own, parse)
    t.equal(strip('a=1; __Host-Http-gatehouse=abc; b=2'), 'a=1; b=2')
    t.equal(
      strip('a=1; __Host-Http-gatehouse-login.AbCdEfGhIjKlMnOp=x; __Host-gatehouse-login.x=old'),
      'a=1',
      "each sign-in's cookie, and the name before __Host-Http-",
    )
    t.equal(
      strip('__Host-Http-gatehouse-login-x=1'),
      '__Host-Http-gatehouse-login-x=1',
      'only after the start',
    )
    t.equal(
      strip('a=1; __Host-gatehouse=old; __Host-gatehouse-login=old'),
      'a=1',
      'the old names never go upstream',
    )
    t.equal(strip('__Host-Http-gatehouse-other=x'), '__Host-Http-gatehouse-other=x')
  },
)

t.test('every spelling the session parser reads as ours is kept from the upstream', async (t) => {
  const parse = await sessionParser()
  const own = new OwnCookies(['gatehouse', 'gatehouse-login'])
  const forms = [
    'gatehouse =v',
    'gatehouse\t=v',
    ' \tgatehouse \t= v',
    'GATEHOUSE=v',
    'Gatehouse-Login=v',
    '__Host-gatehouse=v',
    '__secure-GATEHOUSE=v',
  ]
  for (const form of forms) {
    t.equal(stripCookies(`a=1; ${form}; b=2`, own, parse), 'a=1; b=2', JSON.stringify(form))
  }
  t.equal(stripCookies('gatehouse=one; a=1; gatehouse=two', own, parse), 'a=1', 'duplicates: every copy')
  t.same(
    parse('gatehouse =v; a=1'),
    { gatehouse: 'v', a: '1' },
    'the parser does read the padded form as the session cookie',
  )
})

const options = (extra: Partial<HeaderRewriteOptions> = {}): HeaderRewriteOptions => ({
  own: new OwnCookies(['gh']),
  parseCookie: (header) =>
    Object.fromEntries(header.split(';').map((p) => p.trim().split('=') as [string, string])),
  trustProxy: false,
  publicUrl: 'https://app.example.com',
  passHeaders: [],
  ...extra,
})

const base = {
  ip: '10.0.0.9',
  protocol: 'http',
  host: 'evil.example',
  socket: { remoteAddress: '10.0.0.9' },
}

t.test('the rewrite replaces Authorization and sets X-Forwarded-* from the public origin', async (t) => {
  const rewrite = headerRewriter(options())
  const withToken = rewrite(
    { ...base, upstreamToken: 'T' },
    { authorization: 'Bearer forged', cookie: 'gh=1; a=2', 'x-forwarded-for': '6.6.6.6' },
  )
  t.equal(withToken.authorization, 'Bearer T')
  t.equal(withToken.cookie, 'a=2')
  t.equal(withToken['x-forwarded-for'], '10.0.0.9', 'an untrusted client XFF is not passed on')
  t.equal(withToken['x-forwarded-proto'], 'https', "publicUrl's scheme, not the socket's")
  t.equal(withToken['x-forwarded-host'], 'app.example.com', "publicUrl's host, not the client's Host")

  const anonymous = rewrite(
    { ...base, upstreamToken: null },
    { authorization: 'Bearer forged', cookie: 'gh=1' },
  )
  t.notOk('authorization' in anonymous, 'an incoming Authorization never passes through')
  t.notOk('cookie' in anonymous)

  const kept = rewrite(
    { ...base, upstreamToken: 'T' },
    { accept: 'application/json', 'x-request-id': 'r-1', 'x-forwarded-host': 'evil.example' },
  )
  t.same(
    Object.keys(kept).sort(),
    ['accept', 'authorization', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-request-id'],
    'other headers pass through and ours replace what the client sent (Node lowercases names)',
  )
  t.equal(kept['x-forwarded-host'], 'app.example.com')

  const behindProxy = headerRewriter(options({ trustProxy: true }))(
    { ...base, protocol: 'https', host: 'app.example.com:8443', upstreamToken: null },
    { 'x-forwarded-for': '1.2.3.4' },
  )
  t.equal(behindProxy['x-forwarded-for'], '1.2.3.4, 10.0.0.9')
  t.equal(behindProxy['x-forwarded-proto'], 'https', 'behind a trusted proxy: what Fastify computed')
  t.equal(behindProxy['x-forwarded-host'], 'app.example.com:8443')
})

t.test('spoofable forwarding and identity headers are stripped unless the route passes them', async (t) => {
  const spoofed = {
    forwarded: 'for=6.6.6.6;host=evil;proto=https',
    'x-real-ip': '6.6.6.6',
    'true-client-ip': '6.6.6.6',
    'x-client-ip': '6.6.6.6',
    'x-forwarded-port': '443',
    'x-forwarded-prefix': '/admin',
    'x-forwarded-server': 'evil',
    'x-forwarded-user': 'admin',
    'x-forwarded-email': 'admin@example.com',
    'x-forwarded-groups': 'admins',
    'x-auth-request-user': 'admin',
    'x-auth-request-email': 'admin@example.com',
    'x-remote-user': 'admin',
    'remote-user': 'admin',
    'x-webauth-user': 'admin',
    'x-original-url': '/admin',
    'proxy-authorization': 'Basic Zm9vOmJhcg==',
    x_forwarded_for: '6.6.6.6',
    x_forwarded_host: 'evil',
    x_real_ip: '6.6.6.6',
    x_forwarded_user: 'admin',
    'x-app-trace': 'kept',
    x_app_flag: 'kept',
  }
  const out = headerRewriter(options())({ ...base, upstreamToken: null }, spoofed)
  t.same(Object.keys(out).sort(), [
    'x-app-trace',
    'x-forwarded-for',
    'x-forwarded-host',
    'x-forwarded-proto',
    'x_app_flag',
  ])
  t.equal(out['x-forwarded-for'], '10.0.0.9')

  const passing = headerRewriter(options({ passHeaders: ['x-real-ip', 'x-forwarded-user'] }))(
    { ...base, upstreamToken: null },
    spoofed,
  )
  t.equal(passing['x-real-ip'], '6.6.6.6', 'a route may pass a named one through')
  t.equal(passing['x-forwarded-user'], 'admin')
  t.equal(passing['x_real_ip'], undefined, 'only the name it lists')
  t.equal(passing.forwarded, undefined)
})

t.test('the rewrite drops hop-by-hop headers, Host, and headers Connection names', async (t) => {
  const rewrite = headerRewriter(options())
  const out = rewrite(
    { ip: '10.0.0.9', protocol: 'http', host: 'gw', socket: {}, upstreamToken: 'T' },
    {
      host: 'gw',
      connection: 'keep-alive, x-hop, authorization',
      'x-hop': '1',
      'keep-alive': 'timeout=5',
      te: 'trailers',
      'transfer-encoding': 'chunked',
      expect: '100-continue',
      'x-kept': 'yes',
    },
  )
  t.same(Object.keys(out).sort(), [
    'authorization',
    'x-forwarded-for',
    'x-forwarded-host',
    'x-forwarded-proto',
    'x-kept',
  ])
  t.equal(out.authorization, 'Bearer T', 'naming Authorization in Connection cannot strip the token')
})

t.test("the client's trace context and baggage never reach the upstream", async (t) => {
  const browser = {
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    tracestate: 'vendor=browser',
    baggage: 'userId=alice,isAdmin=true',
    'x-kept': 'yes',
  }
  const out = headerRewriter(options())({ ...base, upstreamToken: null }, browser)
  // W3C Trace Context §3 lets whoever sends traceparent choose the trace id
  // and the sampled flag; baggage is whatever the browser wrote. With
  // tracing on, Gatehouse sends its own trace context after the rewrite.
  t.same(Object.keys(out).sort(), ['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-kept'])
  const named = headerRewriter(options({ passHeaders: ['traceparent', 'baggage'] }))(
    { ...base, upstreamToken: null },
    browser,
  )
  t.equal(named.traceparent, undefined, 'not even when a route names it')
  t.equal(named.baggage, undefined)
})
