import t from 'tap'
import { connectionNamed, headerRewriter, stripCookies } from '../../src/proxy/headers.js'

t.test('stripCookies removes only the gateway cookies', async (t) => {
  const names = ['__Host-gatehouse', '__Host-gatehouse-login']
  t.equal(stripCookies(undefined, names), undefined)
  t.equal(stripCookies('__Host-gatehouse=abc', names), undefined)
  t.equal(stripCookies('a=1; __Host-gatehouse=abc; b=2', names), 'a=1; b=2')
  t.equal(stripCookies('__Host-gatehouse-login=x;theme=dark', names), 'theme=dark')
  t.equal(
    stripCookies('__Host-gatehouse-other=x', names),
    '__Host-gatehouse-other=x',
    'prefix match is not enough',
  )
  const foreign = 'theme=dark; lang=en'
  t.equal(stripCookies(foreign, names), foreign, 'a header with none of ours passes as it came')
  t.equal(
    stripCookies('x__Host-gatehouse=1', names),
    'x__Host-gatehouse=1',
    'a name that only contains ours stays',
  )
})

t.test('the rewrite replaces Authorization and sets X-Forwarded-*', async (t) => {
  const rewrite = headerRewriter(['gh'], false)
  const base = {
    ip: '10.0.0.9',
    protocol: 'https',
    host: 'app.example.com',
    socket: { remoteAddress: '10.0.0.9' },
  }
  const withToken = rewrite(
    { ...base, upstreamToken: 'T' },
    { authorization: 'Bearer forged', cookie: 'gh=1; a=2', 'x-forwarded-for': '6.6.6.6' },
  )
  t.equal(withToken.authorization, 'Bearer T')
  t.equal(withToken.cookie, 'a=2')
  t.equal(withToken['x-forwarded-for'], '10.0.0.9', 'an untrusted client XFF is not passed on')
  t.equal(withToken['x-forwarded-proto'], 'https')
  t.equal(withToken['x-forwarded-host'], 'app.example.com')

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

  const behindProxy = headerRewriter(['gh'], true)(
    { ...base, upstreamToken: null },
    { 'x-forwarded-for': '1.2.3.4' },
  )
  t.equal(behindProxy['x-forwarded-for'], '1.2.3.4, 10.0.0.9')
})

t.test('Connection names hop-by-hop headers besides its own close and keep-alive options', async (t) => {
  t.equal(connectionNamed(undefined), undefined)
  t.equal(connectionNamed('keep-alive'), undefined)
  t.equal(connectionNamed('Close'), undefined)
  t.same(connectionNamed('keep-alive, X-Hop ,upgrade'), ['x-hop', 'upgrade'])
  t.same(connectionNamed(['x-a', 'x-b, close']), ['x-a', 'x-b'])
})

t.test('the rewrite drops hop-by-hop headers, Host, and headers Connection names', async (t) => {
  const rewrite = headerRewriter(['gh'], false)
  const out = rewrite(
    { ip: '10.0.0.9', protocol: 'http', host: 'gw', socket: {}, upstreamToken: 'T' },
    {
      host: 'gw',
      connection: 'keep-alive, x-hop, authorization',
      'x-hop': '1',
      'keep-alive': 'timeout=5',
      te: 'trailers',
      'transfer-encoding': 'chunked',
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
