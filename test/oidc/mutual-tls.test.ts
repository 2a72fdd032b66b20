import { createHash, X509Certificate } from 'node:crypto'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import t, { type Test } from 'tap'
import { CLIENT_REFUSED_BACK_OFF } from '../../src/tokens/refused-client.js'
import { makePki } from '../helpers/certificates.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { startMtlsFront } from '../helpers/mtls-front.js'
import { startStack } from '../helpers/stack.js'
import { startStrictTlsServer } from '../helpers/strict-tls-server.js'

/** RFC 8705 §3.1: the SHA-256 thumbprint of the DER certificate, base64url. */
const thumbprint = (pem: string) =>
  createHash('sha256').update(new X509Certificate(pem).raw).digest('base64url')

/**
 * An IdP whose token, PAR, revocation and userinfo endpoints also answer
 * behind a TLS terminator that asks for client certificates (RFC 8705 §5),
 * advertised as `mtls_endpoint_aliases`; its plain endpoints see no
 * certificate, so a client that ignored the aliases would be refused.
 */
async function mtlsStack(
  t: Test,
  client: { method: 'tls_client_auth' | 'self_signed_tls_client_auth'; self?: boolean },
  /** The IdP's signing key ours, and back-channel logout on. */
  logoutTokens = false,
  /** The terminator ends the handshake for a certificate its CA did not issue: ours is from another. */
  strangerCertificate = false,
) {
  const pki = makePki(t)
  const server = pki.issue('idp-mtls')
  const certificate = client.self ? pki.selfSigned('gatehouse-self') : pki.issue('gatehouse-client')
  let idpPort = 0
  const front = await startMtlsFront(() => idpPort, {
    cert: server.cert,
    key: server.key,
    ca: strangerCertificate ? makePki(t).ca.cert : pki.ca.cert,
    strict: strangerCertificate,
  })
  t.teardown(() => front.close())
  const seen: string[] = []
  const alias = (path: string) => `${front.url}${path}`
  const clock = new TestClock()
  const lines: Record<string, unknown>[] = []
  const stack = await startStack(t, {
    idp: {
      par: true,
      mtls: {},
      discovery: {
        mtls_endpoint_aliases: {
          token_endpoint: alias('/token'),
          revocation_endpoint: alias('/token/revocation'),
          userinfo_endpoint: alias('/me'),
          pushed_authorization_request_endpoint: alias('/request'),
        },
      },
      ...(logoutTokens ? { signingKey } : {}),
    },
    ...(logoutTokens ? { backchannelLogout: true } : {}),
    client: {
      clientSecret: undefined,
      tokenEndpointAuthMethod: client.method,
      certificateBoundAccessTokens: true,
      ...(client.self
        ? {
            jwks: {
              keys: [
                { kty: 'EC', crv: 'P-256', ...publicJwk(certificate.cert), x5c: [der(certificate.cert)] },
              ],
            },
          }
        : { tlsClientAuthSubjectDn: 'CN=gatehouse-client' }),
    },
    config: {
      logLevel: 'info',
      oidc: {
        clientAuth: client.method,
        clientSecret: undefined,
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
  stack.idp.provider.on('grant.success', (ctx) =>
    seen.push(`${ctx.get('x-client-verify')} ${ctx.oidc.params?.grant_type}`),
  )
  return { stack, certificate, seen, clock, lines, front, pki }
}

const signing = await generateKeyPair('RS256', { extractable: true })
const signingKey = { ...(await exportJWK(signing.privateKey)), kid: 'idp-key', alg: 'RS256', use: 'sig' }

function der(pem: string): string {
  return Buffer.from(new X509Certificate(pem).raw).toString('base64')
}

function publicJwk(pem: string): Record<string, unknown> {
  return new X509Certificate(pem).publicKey.export({ format: 'jwk' }) as Record<string, unknown>
}

t.test(
  'tls_client_auth (RFC 8705 §2.1): every call goes to the mTLS aliases with the certificate, and the access token is bound to it',
  async (t) => {
    const { stack, certificate, seen, clock, lines } = await mtlsStack(t, { method: 'tls_client_auth' })
    const base = stack.gateway.url
    t.match(
      lines.find((l) => l.option === 'oidc.tls'),
      { level: 40, certificate: certificate.certFile, subject: 'CN=gatehouse-client', daysLeft: 0 },
      'at start: which certificate, and when it expires (a warning: under 14 days)',
    )
    const scraped = await stack.gateway.app.gatehouse.metrics.registry.metrics()
    const daysLeft = Number(
      /gatehouse_tls_client_certificate_days_left\{option="oidc.tls"\} ([\d.]+)/.exec(scraped)?.[1],
    )
    t.ok(daysLeft > 0.9 && daysLeft <= 1, `the metric gives the days left (${daysLeft})`)
    const { jar, callback } = await login(base, { user: 'uma' })
    t.equal(callback.status, 302, 'PAR, code exchange and userinfo authenticated by the certificate alone')
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200)
    const token = stack.upstream.requests.at(-1)?.authorization?.replace(/^Bearer /, '')
    const stored = await stack.idp.provider.AccessToken.find(token!)
    t.equal(
      stored?.['x5t#S256'],
      thumbprint(certificate.cert),
      'RFC 8705 §3: the token is bound to our certificate',
    )

    clock.advance(61_000)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'refresh through the alias too')
    t.equal((await apiCall(jar, `${base}/api/reports`)).status, 200, 'and client credentials')
    const user = (await apiCall(jar, `${base}/auth/user`)).json<{ logoutUrl: string }>()
    t.equal((await jarFetch(jar, `${base}${user.logoutUrl}`)).status, 200)
    t.equal(stack.idp.stats.revocations, 1, 'and revocation')
    t.same(
      seen,
      ['SUCCESS authorization_code', 'SUCCESS refresh_token', 'SUCCESS client_credentials'],
      'each grant came through the terminator with a verified certificate',
    )
    t.equal(stack.idp.stats.grantErrors, 0)
  },
)

t.test(
  'self_signed_tls_client_auth (RFC 8705 §2.2): the registered certificate is the credential',
  async (t) => {
    const { stack, seen } = await mtlsStack(t, { method: 'self_signed_tls_client_auth', self: true })
    const { jar, callback } = await login(stack.gateway.url, { user: 'vic' })
    t.equal(callback.status, 302)
    t.equal((await apiCall(jar, `${stack.gateway.url}/api/orders`)).status, 200)
    t.match(
      seen,
      [/^FAILED:.* authorization_code$/],
      'self-signed: the terminator could not verify it, the IdP matched it',
    )
  },
)

t.test(
  "a logout token's keys are fetched like every other IdP call: with the private CA and the client certificate",
  async (t) => {
    const { stack, front } = await mtlsStack(t, { method: 'tls_client_auth' }, true)
    const base = stack.gateway.url
    // An IdP that serves its keys only where it asks for a client certificate,
    // under a certificate from its private CA.
    Object.assign(stack.gateway.app.gatehouse.oidc.metadata!, { jwks_uri: `${front.url}/jwks` })
    const { jar, callback } = await login(base, { user: 'ida' })
    t.equal(callback.status, 302)
    const sub = (await apiCall(jar, `${base}/auth/user`)).json<{ sub: string }>().sub
    const token = await new SignJWT({
      events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
      sub,
    })
      .setProtectedHeader({ alg: 'RS256', typ: 'logout+jwt', kid: 'idp-key' })
      .setIssuer(stack.idp.issuer)
      .setAudience(stack.gateway.app.gatehouse.oidc.clientId)
      .setIssuedAt()
      .setJti(crypto.randomUUID())
      .sign(signing.privateKey)
    const ended = await fetch(`${base}/auth/backchannel-logout`, {
      method: 'POST',
      body: new URLSearchParams({ logout_token: token }),
    })
    t.equal(ended.status, 200, await ended.text())
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 401, "the IdP's logout ended the session")
  },
)

t.test(
  'an IdP whose TLS terminator refuses the client certificate: the log names the certificate, not only a closed connection',
  async (t) => {
    const { stack, lines } = await mtlsStack(t, { method: 'tls_client_auth' }, false, true)
    // PAR goes to the alias first: the login stops there.
    const start = await fetch(`${stack.gateway.url}/auth/login`, { redirect: 'manual' })
    t.equal(start.status, 503, 'the pushed request never reached the IdP')
    const refused = lines.find((l) => l.msg === 'login refused')
    t.match(refused?.cause, /client certificate.*oidc\.tls\.cert/, String(refused?.cause))
  },
)

t.test(
  'an IdP whose TLS server refuses the client certificate with an alert: 500 misconfigured, the session stays, /readyz degraded until the certificate is taken again',
  async (t) => {
    const { stack, certificate, clock, lines, pki } = await mtlsStack(t, { method: 'tls_client_auth' })
    const base = stack.gateway.url
    const { jar } = await login(base, { user: 'uma' })
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200)
    const metadata = stack.gateway.app.gatehouse.oidc.metadata!
    const aliases = metadata.mtls_endpoint_aliases!
    // The token endpoint's TLS server, a month ahead by its clock, finds the
    // gateway's certificate expired and says so with certificate_expired.
    const strict = await startStrictTlsServer(t, {
      server: pki.issue('idp-strict'),
      ca: pki.ca.certFile,
      at: new Date(Date.now() + 30 * 86_400_000),
    })
    Object.assign(metadata, { mtls_endpoint_aliases: { ...aliases, token_endpoint: `${strict.url}/token` } })

    clock.advance(61_000)
    const refused = await apiCall(jar, `${base}/api/orders`)
    t.equal(refused.status, 500, 'not a 503: no retry mends it')
    t.equal(refused.json<{ error: string }>().error, 'idp_client_refused')
    t.equal(refused.headers.get('retry-after'), null)
    const ready = await jarFetch(new CookieJar(), `${base}/readyz`)
    t.equal(ready.status, 200, 'kept in rotation: every instance shares the fault')
    t.match(ready.json(), {
      status: 'degraded',
      checks: {
        idp: 'ok',
        clientAuth:
          /refuses the gateway's client credentials: refresh \(client_certificate_refused, alert certificate_expired\)/,
      },
    })
    const line = lines.find((l) => l.code === 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED' && l.level === 50)
    t.match(line, {
      operation: 'refresh',
      clientAuth: 'tls_client_auth',
      tlsAlert: 'certificate_expired',
      reason: /ALERT_CERTIFICATE_EXPIRED .*refused the client certificate of oidc\.tls\.cert/,
      hint: /refused the certificate of oidc\.tls\.cert \(.*CN=gatehouse-client, valid until .*\) in the handshake with alert certificate_expired: .*renew it/,
    })
    t.ok(String(line?.hint).includes(certificate.certFile), 'the hint names the certificate file')
    const logged = JSON.stringify(lines)
    t.notOk(
      logged.includes('PRIVATE KEY') || logged.includes(certificate.key.split('\n')[1]!),
      'never the key',
    )

    // Renewed at the IdP's side: its TLS server takes the certificate again.
    Object.assign(metadata, { mtls_endpoint_aliases: aliases })
    const held = await apiCall(jar, `${base}/api/orders`)
    t.equal(held.status, 500, 'the refused client is held back for a while (refused-client.ts)')
    t.ok(
      lines.some((l) => /identity provider not asked/.test(String(l.cause))),
      'without asking the IdP: its TLS server would count another failure',
    )
    clock.advance(CLIENT_REFUSED_BACK_OFF)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'then the same session: it stayed')
    t.match((await jarFetch(new CookieJar(), `${base}/readyz`)).json(), {
      status: 'ready',
      checks: { clientAuth: 'ok' },
    })
    t.ok(lines.some((l) => /accepts the gateway's client credentials again/.test(String(l.msg))))
  },
)

t.test(
  "userinfo's mTLS alias refusing the certificate fails the login as misconfigured, and /readyz recovers once userinfo takes it",
  async (t) => {
    const { stack, pki } = await mtlsStack(t, { method: 'tls_client_auth' })
    const base = stack.gateway.url
    const metadata = stack.gateway.app.gatehouse.oidc.metadata!
    const aliases = metadata.mtls_endpoint_aliases!
    const strict = await startStrictTlsServer(t, {
      server: pki.issue('idp-strict'),
      ca: makePki(t).ca.certFile,
    })
    Object.assign(metadata, { mtls_endpoint_aliases: { ...aliases, userinfo_endpoint: `${strict.url}/me` } })
    const { callback } = await login(base, { user: 'uma' })
    t.equal(callback.status, 500, 'the code was redeemed, but userinfo refused the certificate (unknown_ca)')
    t.match(callback.text, /<title>Sign-in is misconfigured<\/title>/)
    t.match((await jarFetch(new CookieJar(), `${base}/readyz`)).json(), {
      status: 'degraded',
      checks: { clientAuth: /userinfo \(client_certificate_refused, alert unknown_ca\)/ },
    })

    Object.assign(metadata, { mtls_endpoint_aliases: aliases })
    t.equal((await login(base, { user: 'uma' })).callback.status, 302)
    t.match((await jarFetch(new CookieJar(), `${base}/readyz`)).json(), {
      status: 'ready',
      checks: { clientAuth: 'ok' },
    })
  },
)
