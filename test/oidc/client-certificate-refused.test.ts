/**
 * What reaches the gateway when the IdP's TLS server refuses the gateway's
 * client certificate, from real TLS servers and real certificates, and how
 * it is classified. A refusing alert (RFC 8446 §6.2) was taken for an
 * outage: a 503 with Retry-After, `/readyz` ready, every session ended
 * after `tokens.unavailableLimit`, though no retry could mend it. It is the
 * gateway's own credential refused, as a wrong secret is; a close or reset
 * with no alert says nothing of the certificate and stays an outage.
 */
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import * as oauth from 'oauth4webapi'
import t, { type Test } from 'tap'
import type { TlsMaterial } from '../../src/config/types.js'
import { createIdpHttp } from '../../src/oidc/idp-http.js'
import { idpFailureOf, translateIdpError } from '../../src/oidc/translate.js'
import { makePki, type TestPki } from '../helpers/certificates.js'
import { REFUSED_URL } from '../helpers/ports.js'
import { startStrictTlsServer } from '../helpers/strict-tls-server.js'

const VERSIONS = ['TLSv1.3', 'TLSv1.2'] as const

/**
 * A refresh-token grant at `url` through the gateway's IdP client, as
 * `OidcClient.refresh` makes it, and the failure the gateway makes of it.
 * The material is given as loaded, past the config's own checks, so an
 * expired certificate reaches the server as one that expired while the
 * gateway ran.
 */
async function refreshAt(t: Test, url: string, tls: TlsMaterial) {
  const http = createIdpHttp({ timeoutMs: 5000, connectTimeoutMs: 5000, allowHttp: false, tls })
  t.teardown(() => http.close())
  const as = { issuer: url, token_endpoint: `${url}/token` }
  try {
    const response = await oauth.refreshTokenGrantRequest(
      as,
      { client_id: 'gatehouse' },
      oauth.TlsClientAuth(),
      'a-refresh-token',
      http.options(),
    )
    await response.body?.cancel()
  } catch (err) {
    const error = translateIdpError('refresh', err, {
      clientCertificate: tls.cert === undefined ? undefined : 'oidc.tls',
    })
    return { error, failure: idpFailureOf(error)! }
  }
  throw new Error(`${url} took the certificate`)
}

const material = (pki: TestPki, client?: { cert: string; key: string }): TlsMaterial => ({
  ca: pki.ca.cert,
  ...(client ? { cert: client.cert, key: client.key } : {}),
})

t.test(
  'a certificate from a CA the server does not trust: unknown_ca, the client refused, over TLS 1.3 and 1.2',
  async (t) => {
    const pki = makePki(t)
    const stranger = makePki(t).issue('gatehouse-client')
    for (const version of VERSIONS) {
      const server = await startStrictTlsServer(t, { server: pki.issue('idp'), ca: pki.ca.certFile, version })
      const { error, failure } = await refreshAt(t, server.url, material(pki, stranger))
      t.equal(
        error.code,
        'GATEHOUSE_ERR_IDP_CLIENT_REFUSED',
        `${version}: "sign-in is misconfigured", not a 503`,
      )
      t.match(
        failure,
        {
          answer: 'client_certificate_refused',
          verdict: 'client_refused',
          tlsAlert: 'unknown_ca',
          reason:
            /^TLS ERR_SSL_\S+_ALERT_UNKNOWN_CA \(.*\): the identity provider refused the client certificate of oidc\.tls\.cert \(alert unknown_ca: it does not trust the CA that issued the certificate\)$/,
        },
        version,
      )
    }
  },
)

t.test(
  'an expired certificate, and a revoked one: certificate_expired and certificate_revoked',
  async (t) => {
    const pki = makePki(t)
    const expired = pki.issue('gatehouse-expired', { expired: true })
    const revoked = pki.issue('gatehouse-revoked')
    const crl = pki.revocationList([revoked])
    for (const version of VERSIONS) {
      const server = await startStrictTlsServer(t, {
        server: pki.issue('idp'),
        ca: pki.ca.certFile,
        crl,
        version,
      })
      const old = await refreshAt(t, server.url, material(pki, expired))
      t.equal(old.error.code, 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED', `${version}: expired`)
      t.match(old.failure, { verdict: 'client_refused', tlsAlert: 'certificate_expired' })
      const gone = await refreshAt(t, server.url, material(pki, revoked))
      t.equal(gone.error.code, 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED', `${version}: revoked`)
      t.match(gone.failure, { verdict: 'client_refused', tlsAlert: 'certificate_revoked' })
    }
  },
)

t.test(
  "a certificate valid by the gateway's clock that the server's finds expired: certificate_expired",
  async (t) => {
    const pki = makePki(t)
    const server = await startStrictTlsServer(t, {
      server: pki.issue('idp'),
      ca: pki.ca.certFile,
      at: new Date(Date.now() + 30 * 86_400_000),
    })
    const { failure } = await refreshAt(t, server.url, material(pki, pki.issue('gatehouse-client')))
    t.match(failure, {
      verdict: 'client_refused',
      tlsAlert: 'certificate_expired',
      reason:
        /alert certificate_expired: the certificate has expired, or is not valid yet, by the server's clock/,
    })
  },
)

/** Node's TLS server, `requestCert` and `rejectUnauthorized`: what an IdP written on Node does. */
async function nodeServer(t: Test, pki: TestPki, version: 'TLSv1.2' | 'TLSv1.3') {
  const idp = pki.issue('idp')
  const server = createServer(
    {
      cert: idp.cert,
      key: idp.key,
      ca: pki.ca.cert,
      requestCert: true,
      rejectUnauthorized: true,
      maxVersion: version,
    },
    (_req, res) => res.end('{}'),
  )
  server.on('tlsClientError', () => {})
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `https://localhost:${(server.address() as AddressInfo).port}`
}

t.test(
  'no certificate where one is required: TLS 1.3 says certificate_required, the client refused, with what to configure',
  async (t) => {
    const pki = makePki(t)
    const { error, failure } = await refreshAt(t, await nodeServer(t, pki, 'TLSv1.3'), material(pki))
    t.equal(error.code, 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED')
    t.match(failure, {
      verdict: 'client_refused',
      tlsAlert: 'certificate_required',
      reason:
        /ALERT_CERTIFICATE_REQUIRED .*: the identity provider asks for a client certificate, and the gateway has none/,
    })
  },
)

t.test(
  'negative controls: a close or reset without a certificate alert, and a refused connection, stay an outage',
  async (t) => {
    const pki = makePki(t)
    const stranger = makePki(t).issue('gatehouse-client')
    const expired = pki.issue('gatehouse-expired', { expired: true })
    // Node checks a client certificate after the handshake and closes with
    // no alert: over TLS 1.3 after the client's side of the handshake,
    // read as a closed connection (with the hint of what it may be); over
    // TLS 1.2 before it, a reset. A crashing IdP looks the same.
    for (const version of VERSIONS) {
      const url = await nodeServer(t, pki, version)
      for (const [name, client] of [
        ['stranger', stranger],
        ['expired', expired],
      ] as const) {
        const { error, failure } = await refreshAt(t, url, material(pki, client))
        t.equal(error.code, 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE', `${version}, ${name}`)
        t.match(failure, { answer: 'network', verdict: 'unavailable', tlsAlert: undefined })
        if (version === 'TLSv1.3') t.match(failure.reason, /closes so when it did not trust the one offered/)
        else t.match(failure.reason, /^ECONNRESET/)
      }
    }
    // TLS 1.2 with no certificate: handshake_failure, which a server sends
    // too when the two sides share no cipher or version.
    const { failure: none } = await refreshAt(t, await nodeServer(t, pki, 'TLSv1.2'), material(pki))
    t.match(none, { answer: 'network', verdict: 'unavailable', reason: /ALERT_HANDSHAKE_FAILURE/ })
    const { failure: refused } = await refreshAt(t, REFUSED_URL.replace('http:', 'https:'), material(pki))
    t.match(refused, { answer: 'network', verdict: 'unavailable', reason: /^ECONNREFUSED/ })
  },
)
