import { connect } from 'node:net'
import t, { type Test } from 'tap'
import type { TestConfigInput } from '../helpers/gateway.js'
import { route } from '../helpers/gateway.js'
import { login } from '../helpers/login.js'
import { startScriptedStack } from '../helpers/scripted-stack.js'
import { rawCall } from '../helpers/scripted-upstream.js'

/** What a client might claim about itself, as the probes sent it. */
const SPOOFED = {
  host: 'evil.example',
  forwarded: 'for=6.6.6.6;host=evil.example;proto=https',
  'x-real-ip': '6.6.6.6',
  'true-client-ip': '6.6.6.6',
  'x-client-ip': '6.6.6.6',
  'x-forwarded-port': '8443',
  'x-forwarded-prefix': '/admin',
  'x-forwarded-server': 'evil',
  X_Forwarded_For: '6.6.6.6',
  'x-forwarded-for': '6.6.6.6',
  'x-forwarded-host': 'evil.example',
  'x-forwarded-proto': 'https',
  'x-forwarded-user': 'admin',
  'x-forwarded-email': 'admin@example.com',
  'x-auth-request-user': 'admin',
  'x-remote-user': 'admin',
  'remote-user': 'admin',
  'proxy-authorization': 'Basic YWRtaW46YWRtaW4=',
}

const STRIPPED = Object.keys(SPOOFED)
  .map((name) => name.toLowerCase())
  .filter((name) => !['host', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto'].includes(name))

async function setup(t: Test, config: Partial<TestConfigInput> = {}) {
  const started = await startScriptedStack(
    t,
    (upstream) => [
      route('/api/user', upstream),
      route('/api/maybe', upstream, { token: 'optional-user' }),
      route('/api/public', upstream, { token: 'none', csrf: false }),
      route('/api/geo', upstream, { token: 'none', passHeaders: ['x-real-ip', 'forwarded'] }),
    ],
    {
      config,
    },
  )
  return started
}

t.test('spoofed forwarding and identity headers never reach the upstream', async (t) => {
  const { upstream, base } = await setup(t)
  const { jar } = await login(base)
  const cookie = jar.header(`${base}/api/user/x`)!
  for (const path of ['/api/user/x', '/api/maybe/x', '/api/public/x']) {
    const res = await rawCall(`${base}${path}`, { ...SPOOFED, cookie })
    t.equal(res.status, 200, path)
    const seen = upstream.seen.at(-1)!
    for (const name of STRIPPED) t.equal(seen.headers[name], undefined, `${path}: ${name} stripped`)
    t.equal(seen.headers['x-forwarded-for'], '127.0.0.1', `${path}: the peer the gateway saw`)
    t.equal(seen.headers['x-forwarded-host'], new URL(base).host, `${path}: the public origin, not Host`)
    t.equal(seen.headers['x-forwarded-proto'], 'http', `${path}: the public scheme`)
    t.notOk(
      seen.rawHeaders.some((value) => value.includes('6.6.6.6') || value.includes('evil.example')),
      `${path}: nothing the client claimed, under any name`,
    )
  }
})

/**
 * What other authenticating front proxies and load balancers tell their
 * upstreams, each spelled as that product sends it; an upstream that used
 * to sit behind one believes them.
 */
const FRONT_PROXY_IDENTITY = {
  'Remote-Groups': 'admins',
  'Remote-Email': 'admin@example.com',
  'Remote-Name': 'Admin',
  'X-Amzn-Oidc-Data': 'eyJ.forged.jwt',
  'X-Amzn-Oidc-Identity': 'admin',
  'X-Amzn-Oidc-Accesstoken': 'forged',
  'X-MS-CLIENT-PRINCIPAL': 'eyJhZG1pbiI6dHJ1ZX0=',
  'X-MS-CLIENT-PRINCIPAL-NAME': 'admin@example.com',
  'X-MS-CLIENT-PRINCIPAL-ID': '00000000-0000-0000-0000-000000000000',
  'X-MS-CLIENT-PRINCIPAL-IDP': 'aad',
  'X-Goog-Authenticated-User-Email': 'accounts.google.com:admin@example.com',
  'X-Goog-Authenticated-User-Id': 'accounts.google.com:1',
  'X-Goog-Authenticated-User-JWT': 'eyJ.forged.jwt',
  'Cf-Access-Jwt-Assertion': 'eyJ.forged.jwt',
  'Cf-Access-Authenticated-User-Email': 'admin@example.com',
  'X-Forwarded-Client-Cert': 'By=spiffe://evil;URI=spiffe://admin',
  'X-SSL-Client-Verify': 'SUCCESS',
  'X-SSL-Client-DN': 'CN=admin',
  'X-SSL-Client-Cert': '-----BEGIN CERTIFICATE-----',
  'X-Forwarded-Uri': '/admin',
  'X-Forwarded-Path': '/admin',
  'X-HTTP-Method-Override': 'DELETE',
  'X-HTTP-Method': 'DELETE',
  'X-Method-Override': 'DELETE',
  X_Amzn_Oidc_Identity: 'admin',
  Cf_Access_Authenticated_User_Email: 'admin@example.com',
}

t.test(
  'identity headers of other front proxies, and method overrides, never reach the upstream',
  async (t) => {
    const { upstream, base } = await setup(t)
    const { jar } = await login(base)
    const cookie = jar.header(`${base}/api/user/x`)!
    for (const path of ['/api/user/x', '/api/maybe/x', '/api/public/x']) {
      const res = await rawCall(`${base}${path}`, { ...FRONT_PROXY_IDENTITY, cookie })
      t.equal(res.status, 200, path)
      const seen = upstream.seen.at(-1)!
      for (const name of Object.keys(FRONT_PROXY_IDENTITY))
        t.equal(seen.headers[name.toLowerCase()], undefined, `${path}: ${name} stripped`)
    }
  },
)

t.test('a route passes the headers it names, and only those', async (t) => {
  const { upstream, base } = await setup(t)
  const res = await rawCall(`${base}/api/geo/x`, SPOOFED)
  t.equal(res.status, 200)
  const seen = upstream.seen.at(-1)!
  t.equal(seen.headers['x-real-ip'], '6.6.6.6')
  t.equal(seen.headers.forwarded, SPOOFED.forwarded)
  t.equal(seen.headers['true-client-ip'], undefined)
  t.equal(seen.headers['x-forwarded-user'], undefined)
})

t.test('behind a trusted proxy, the forwarding chain follows Fastify’s trust rules', async (t) => {
  const { upstream, base } = await setup(t, { trustProxy: true })
  const res = await rawCall(`${base}/api/public/x`, {
    'x-forwarded-for': '203.0.113.7',
    'x-forwarded-host': 'app.example.com',
    'x-forwarded-proto': 'https',
    'x-real-ip': '6.6.6.6',
  })
  t.equal(res.status, 200)
  const seen = upstream.seen.at(-1)!
  t.equal(seen.headers['x-forwarded-for'], '203.0.113.7, 127.0.0.1', 'the chain, with this hop appended')
  t.equal(seen.headers['x-forwarded-host'], 'app.example.com')
  t.equal(seen.headers['x-forwarded-proto'], 'https')
  t.equal(seen.headers['x-real-ip'], undefined, 'still stripped: Gatehouse never sets it')
})

/** Two Host lines on the wire, which no HTTP client library will send. */
function twoHosts(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () =>
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nHost: evil.example\r\nx-csrf: 1\r\nConnection: close\r\n\r\n`,
      ),
    )
    let text = ''
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1')
    })
    socket.on('end', () => resolve(text))
    socket.on('error', reject)
  })
}

t.test('two Host headers get 400 on every path, before anything else', async (t) => {
  const { upstream, base } = await setup(t)
  const port = Number(new URL(base).port)
  for (const path of ['/api/public/x', '/api/user/x', '/auth/user', '/auth/login', '/healthz', '/nowhere']) {
    const answer = await twoHosts(port, path)
    t.match(answer, /^HTTP\/1\.1 400 /, path)
    // The sign-in routes answer a browser with the page, everything else with JSON.
    if (path === '/auth/login') t.match(answer, /more than one Host header/, path)
    else t.match(answer, /"error":"duplicate_host"/, path)
  }
  t.equal(upstream.seen.length, 0)
})
