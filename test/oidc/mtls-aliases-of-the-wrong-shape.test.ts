/**
 * `mtls_endpoint_aliases` (RFC 8705 §5) of the wrong shape, from a real
 * oidc-provider behind a TLS terminator that asks for client certificates.
 * oauth4webapi reads the aliases only when it calls an endpoint: one sent
 * as a string failed every call as a TypeError (503 "unavailable", a
 * sign-in never possible, `/readyz` ready), one whose member was no URL
 * failed every sign-in with a 400. They are read as not advertised, the
 * whole or the member, with a warning naming it, so the call goes to the
 * endpoint itself, as RFC 8705 §5 has it for an IdP without aliases. Here
 * the document names the terminator's URLs as the endpoints themselves
 * too (Keycloak serves mTLS on its regular endpoints), so sign-in,
 * refresh and logout all work without the aliases.
 */
import t, { type Test } from 'tap'
import { makePki } from '../helpers/certificates.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { startMtlsFront } from '../helpers/mtls-front.js'
import { startStack } from '../helpers/stack.js'

const WARNING = 'the identity provider advertises a discovery member of the wrong shape'

/** The aliases as the IdP sends them, from the terminator's URL of each path. */
type Aliases = (at: (path: string) => string) => unknown

async function mtlsStack(t: Test, aliases: Aliases) {
  const pki = makePki(t)
  const server = pki.issue('idp-mtls')
  const certificate = pki.issue('gatehouse-client')
  let idpPort = 0
  const front = await startMtlsFront(() => idpPort, { cert: server.cert, key: server.key, ca: pki.ca.cert })
  t.teardown(() => front.close())
  const at = (path: string) => `${front.url}${path}`
  const clock = new TestClock()
  const lines: Record<string, unknown>[] = []
  const stack = await startStack(t, {
    idp: {
      par: true,
      mtls: {},
      quirks: {
        discoveryDocument: (doc) => ({
          ...doc,
          token_endpoint: at('/token'),
          revocation_endpoint: at('/token/revocation'),
          userinfo_endpoint: at('/me'),
          pushed_authorization_request_endpoint: at('/request'),
          mtls_endpoint_aliases: aliases(at),
        }),
      },
    },
    client: {
      clientSecret: undefined,
      tokenEndpointAuthMethod: 'tls_client_auth',
      certificateBoundAccessTokens: true,
      tlsClientAuthSubjectDn: 'CN=gatehouse-client',
    },
    config: {
      logLevel: 'info',
      oidc: {
        clientAuth: 'tls_client_auth',
        clientSecret: undefined,
        scopes: ['openid', 'offline_access'],
        tls: {
          cert: { file: certificate.certFile },
          key: { pem: certificate.key },
          ca: { file: pki.ca.certFile },
        },
      },
    },
    gateway: { now: clock.now, logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
  })
  idpPort = Number(new URL(stack.idp.issuer).port)
  return { stack, clock, lines }
}

for (const [shape, aliases, reason] of [
  ['a string', (at) => at('/token'), /mtls_endpoint_aliases as a string, not an object/],
  ['a list', (at) => [at('/token')], /mtls_endpoint_aliases as a list, not an object/],
  ['null', () => null, /mtls_endpoint_aliases as null, not an object/],
  [
    'an object whose members are no URLs',
    (at) => ({
      token_endpoint: 42,
      pushed_authorization_request_endpoint: { url: at('/request') },
      userinfo_endpoint: '/me',
      revocation_endpoint: '',
    }),
    /mtls_endpoint_aliases\.token_endpoint as a number; read as not advertised/,
  ],
  [
    'an object with a plain-http alias on another host',
    (at) => ({
      token_endpoint: at('/token'),
      pushed_authorization_request_endpoint: 'http://idp.example/par',
    }),
    /mtls_endpoint_aliases\.pushed_authorization_request_endpoint "http:\/\/idp\.example\/par", which is neither https nor plain http on a loopback host/,
  ],
] as [string, Aliases, RegExp][]) {
  t.test(
    `mtls_endpoint_aliases as ${shape}: read as not advertised, named, and every call works`,
    async (t) => {
      const { stack, clock, lines } = await mtlsStack(t, aliases)
      const base = stack.gateway.url
      t.match(
        lines.filter((line) => line.msg === WARNING).map((line) => line.reason),
        [reason],
        'a warning names it',
      )
      t.equal((await jarFetch(new CookieJar(), `${base}/readyz`)).status, 200)
      const { jar: session, callback } = await login(base, { user: 'uma' })
      t.equal(callback.status, 302, 'PAR, code exchange and userinfo with the certificate')
      clock.advance(61_000)
      t.equal((await apiCall(session, `${base}/api/orders`)).status, 200, 'a refresh')
      t.equal(stack.idp.stats.refreshGrants, 1)
      const user = (await apiCall(session, `${base}/auth/user`)).json<{ logoutUrl: string }>()
      t.equal((await jarFetch(session, `${base}${user.logoutUrl}`)).status, 200, 'logout')
      t.equal(stack.idp.stats.revocations, 1, 'with its revocation')
      t.notOk(
        lines.some((line) => (line.level as number) >= 40 && line.msg !== WARNING && !line.option),
        'and nothing else to warn of',
      )
    },
  )
}
