/**
 * A reload that renews the client certificate of a provider whose IdP binds
 * access tokens to it (RFC 8705 §3), the routes given the same new
 * certificate as FAPI 2.0's check asks, with the issuer unchanged. The
 * gateway's own client-credentials token, cached by issuer, client id and
 * scopes, was still sent, bound to the old certificate, and refused by the
 * upstream until it expired; a session's token was sent too, refused, and
 * replaced only where the route replays (retryOnInvalidToken, a body that
 * can be sent again). Each is now requested again over the new certificate
 * before it is sent.
 */
import { createHash, X509Certificate } from 'node:crypto'
import { createServer } from 'node:https'
import type { TLSSocket } from 'node:tls'
import t, { type Test } from 'tap'
import type { DevIdp } from '../../dev/idp.js'
import { type Issued, makePki, type TestPki } from '../helpers/certificates.js'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startMtlsFront } from '../helpers/mtls-front.js'
import { configText, startReloadable } from '../helpers/reloadable.js'

/** RFC 8705 §3.1: the SHA-256 thumbprint of the DER certificate, base64url. */
const thumbprint = (pem: string) =>
  createHash('sha256').update(new X509Certificate(pem).raw).digest('base64url')

interface Verdict {
  readonly path: string
  readonly ok: boolean
  readonly bound: string | undefined
  readonly presented: string | undefined
}

/**
 * A resource server that takes a token only with the certificate it is
 * bound to (RFC 8705 §3.2), looked up in the IdP's own store, and answers
 * anything else 401 `invalid_token` (RFC 6750 §3.1).
 */
async function startBoundUpstream(
  t: Test,
  pki: TestPki,
  boundTo: (token: string) => Promise<string | undefined>,
) {
  const own = pki.issue('bound-upstream')
  const verdicts: Verdict[] = []
  const server = createServer(
    { cert: own.cert, key: own.key, ca: pki.ca.cert, requestCert: true, rejectUnauthorized: false },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate()
      const presented = peer?.raw ? createHash('sha256').update(peer.raw).digest('base64url') : undefined
      const token = req.headers.authorization?.replace(/^Bearer /, '')
      void (token === undefined ? Promise.resolve(undefined) : boundTo(token)).then((bound) => {
        const ok = bound !== undefined && bound === presented
        verdicts.push({ path: req.url ?? '', ok, bound, presented })
        res.writeHead(ok ? 200 : 401, ok ? {} : { 'www-authenticate': 'Bearer error="invalid_token"' })
        res.end()
      })
    },
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return { url: `https://localhost:${(server.address() as { port: number }).port}`, verdicts }
}

async function boundThumbprint(idp: DevIdp, token: string): Promise<string | undefined> {
  const stored =
    (await idp.provider.AccessToken.find(token)) ?? (await idp.provider.ClientCredentials.find(token))
  return stored?.['x5t#S256']
}

const tlsOf = (pki: TestPki, certificate: Issued) => ({
  cert: { file: certificate.certFile },
  key: { file: certificate.keyFile },
  ca: { file: pki.ca.certFile },
})

async function rotatedStack(t: Test) {
  const pki = makePki(t)
  const server = pki.issue('idp-mtls')
  const first = pki.issue('gatehouse-client-1')
  const second = pki.issue('gatehouse-client-2')
  let idp: DevIdp | undefined
  const front = await startMtlsFront(() => Number(new URL(idp!.issuer).port), {
    cert: server.cert,
    key: server.key,
    ca: pki.ca.cert,
  })
  t.teardown(() => front.close())
  const upstream = await startBoundUpstream(t, pki, (token) => boundThumbprint(idp!, token))
  const routes = (certificate: Issued) => [
    route('/api/orders', upstream.url, { tls: tlsOf(pki, certificate) }),
    route('/api/reports', upstream.url, {
      token: 'client',
      scopes: ['reports.read'],
      tls: tlsOf(pki, certificate),
    }),
  ]
  const clock = new TestClock()
  const s = await startReloadable(t, () => routes(first), {
    watch: false,
    now: clock.now,
    idp: {
      mtls: {},
      discovery: {
        mtls_endpoint_aliases: {
          token_endpoint: `${front.url}/token`,
          revocation_endpoint: `${front.url}/token/revocation`,
          userinfo_endpoint: `${front.url}/me`,
        },
      },
    },
    client: { certificateBoundAccessTokens: true },
    // The second test holds a refresh at the IdP across a whole reload: on
    // a loaded machine that outlasted the tests' 3 s IdP timeout (a 503).
    input: { oidc: { tls: tlsOf(pki, first) }, idpTimeout: 20_000 },
  })
  idp = s.idp
  const rotate = async () => {
    s.configMap.write(
      configText({ ...s.input, routes: routes(second), oidc: { ...s.input.oidc, tls: tlsOf(pki, second) } }),
    )
    t.match(await s.running.reload(), { result: 'applied' }, 'the renewed certificate is applied')
  }
  return { s, upstream, clock, first, second, rotate }
}

t.test(
  "tokens bound to the certificate a reload renewed are not sent with the new one: the client token is fetched again, the session's refreshed, each over the new certificate",
  async (t) => {
    const { s, upstream, first, second, rotate } = await rotatedStack(t)
    const { jar } = await login(s.url)
    t.equal((await apiCall(jar, `${s.url}/api/reports`)).status, 200)
    t.equal((await apiCall(jar, `${s.url}/api/orders`)).status, 200)
    t.same(
      upstream.verdicts.map((v) => v.bound),
      [thumbprint(first.cert), thumbprint(first.cert)],
      'both tokens are bound to the first certificate (RFC 8705 §3)',
    )
    const grants = s.idp.stats.clientCredentialsGrants
    await rotate()

    const from = upstream.verdicts.length
    const reports = await apiCall(jar, `${s.url}/api/reports`)
    t.equal(reports.status, 200, 'the client route is served after the reload')
    t.same(
      upstream.verdicts.slice(from).map((v) => ({ ok: v.ok, bound: v.bound })),
      [{ ok: true, bound: thumbprint(second.cert) }],
      'with a token bound to the new certificate, at the first request',
    )
    t.equal(s.idp.stats.clientCredentialsGrants, grants + 1, 'fetched over the new certificate')
    t.equal((await apiCall(jar, `${s.url}/api/reports`)).status, 200)
    t.equal(s.idp.stats.clientCredentialsGrants, grants + 1, 'and kept for the next request')

    // The session's token was requested with the first certificate: it is
    // refreshed over the new one before it is sent, not refused upstream first.
    const sessionFrom = upstream.verdicts.length
    t.equal((await apiCall(jar, `${s.url}/api/orders`)).status, 200, "the session's route is served")
    t.same(
      upstream.verdicts.slice(sessionFrom),
      [{ path: '/api/orders', ok: true, bound: thumbprint(second.cert), presented: thumbprint(second.cert) }],
      'with a token bound to the new certificate, at the first attempt',
    )
    t.equal(s.idp.stats.refreshGrants, 1, 'one refresh, over the new certificate')
    t.equal((await apiCall(jar, `${s.url}/api/orders`)).status, 200)
    t.equal(s.idp.stats.refreshGrants, 1, 'and its token kept for the next request')
    t.equal(s.idp.stats.refreshReplays, 0, 'no refresh token was replayed')
    t.equal(s.idp.stats.revokedGrants, 0, 'no grant was revoked')
  },
)

t.test(
  'a refresh held at the IdP across the reload finishes over the old certificate; its token is refreshed over the new one before it is sent, nothing replayed',
  async (t) => {
    const { s, upstream, clock, first, second, rotate } = await rotatedStack(t)
    const { jar } = await login(s.url)
    let release!: () => void
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    let reachedIt!: () => void
    const reached = new Promise<void>((resolve) => {
      reachedIt = resolve
    })
    s.idp.holdTokenAnswers(() => {
      reachedIt()
      return held
    })
    clock.advance(61_000)
    const inFlight = apiCall(jar, `${s.url}/api/orders`)
    await reached
    await rotate()
    s.idp.holdTokenAnswers()
    release()
    t.equal((await inFlight).status, 200, 'the held refresh is answered on the client it started with')
    t.equal(upstream.verdicts.at(-1)?.bound, thumbprint(first.cert), 'over the old certificate')
    t.equal(s.idp.stats.refreshGrants, 1)

    const from = upstream.verdicts.length
    t.equal((await apiCall(jar, `${s.url}/api/orders`)).status, 200)
    t.same(
      upstream.verdicts.slice(from).map((v) => ({ ok: v.ok, bound: v.bound })),
      [{ ok: true, bound: thumbprint(second.cert) }],
      'the next request is sent a token bound to the new certificate, at its first attempt',
    )
    t.equal(s.idp.stats.refreshGrants, 2, 'refreshed with the token the held refresh rotated')
    t.equal(s.idp.stats.refreshReplays, 0, 'no refresh token was replayed')
    t.equal(s.idp.stats.revokedGrants, 0, 'no grant was revoked')
  },
)
