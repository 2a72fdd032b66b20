/**
 * `gatehouse check --online` proves the client credentials before any user
 * tries them, with one token request that cannot succeed and changes
 * nothing, against the real dev IdP; compares the scopes; and names the
 * cause of a network failure.
 */
import { execFileSync } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, readFileSync } from 'node:fs'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { type DevIdpOptions, startDevIdp } from '../../dev/idp.js'
import { makePki } from '../helpers/certificates.js'
import { checkOnline as checkConfigOnline } from '../helpers/check-online.js'
import { REFUSED_PORT } from '../helpers/ports.js'
import { startStrictTlsServer } from '../helpers/strict-tls-server.js'

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-credentials-'))
const SECRET = 's3cret-for.the_probe'
/** A client that authenticates by its certificate's subject alone (RFC 8705 §2.1). */
const MTLS_CLIENT = {
  clientId: 'gatehouse',
  clientSecret: undefined,
  tokenEndpointAuthMethod: 'tls_client_auth',
  tlsClientAuthSubjectDn: 'CN=gatehouse-client',
  redirectUris: ['http://127.0.0.1:3000/auth/callback'],
} as const

/**
 * `gatehouse check --online` with the helper's generous budget: the IdP answers
 * from this process's event loop, which a loaded machine holds past a second,
 * so only the hanging case, which means to time out, gets 1 s.
 */
const checkOnline = (issuer: string, oidcExtra: string, routes = '[]', timeout?: string) =>
  checkConfigOnline(issuer, oidcExtra, { routes, ...(timeout ? { timeout } : {}) })

async function idp(t: Test, options: Partial<DevIdpOptions> = {}, clientSecret = SECRET) {
  const started = await startDevIdp({
    ...options,
    clients: [{ clientId: 'gatehouse', clientSecret, redirectUris: ['http://127.0.0.1:3000/auth/callback'] }],
  })
  t.teardown(() => started.close())
  return started
}

t.test(
  'the right secret: accepted (invalid_grant to a random refresh token), and nothing redeemed',
  async (t) => {
    const dev = await idp(t)
    const r = await checkOnline(dev.issuer, `  clientSecret: ${SECRET}`)
    t.equal(r.code, 0, r.err)
    t.match(
      r.out,
      /^client credentials \(probe\)\s+client_secret_basic\s+accepted: HTTP 400 invalid_grant: grant request is invalid\s+ok$/m,
    )
    t.equal(dev.stats.tokenRequests, 1, 'one request')
    t.equal(dev.stats.refreshGrants, 0, 'no grant succeeded')
    t.equal(dev.stats.revokedGrants, 0, 'nothing revoked')
    t.notMatch(r.out, new RegExp(SECRET), 'the secret is not printed')
  },
)

t.test('a wrong secret: refused with every method, exit 1, and what to check', async (t) => {
  const dev = await idp(t)
  const r = await checkOnline(dev.issuer, '  clientSecret: not-the-secret')
  t.equal(r.code, 1)
  t.match(
    r.out,
    /^client credentials \(probe\)\s+client_secret_basic\s+refused: HTTP 401 with WWW-Authenticate: Basic error="invalid_client".*BLOCKING$/m,
  )
  t.match(
    r.out,
    /^client credentials with client_secret_post\s+client_secret_post\s+refused: HTTP 401 invalid_client.*BLOCKING$/m,
  )
  t.match(
    r.out,
    /hint: the identity provider refuses client gatehouse with every method Gatehouse could use \(client_secret_basic, client_secret_post\): check oidc\.clientId and oidc\.clientSecret/,
  )
  t.match(r.out, 'FAIL: Gatehouse cannot log users in with this IdP as configured.')
  t.notMatch(r.out, /not-the-secret/)
})

t.test(
  'a secret the IdP calls malformed (invalid_request, before it looks at the client) is not taken as accepted',
  async (t) => {
    // RFC 6749 Appendix A.2: a client secret is printable ASCII. oidc-provider
    // answers a Basic header with anything else `invalid_request ... not
    // properly encoded`, which the probe took for a grant refused after the
    // client was authenticated: "accepted ... ok", exit 0.
    const secret = 'sécret-for-the-probe'
    const dev = await idp(t, {}, secret)
    const r = await checkOnline(dev.issuer, `  clientSecret: "${secret}"`)
    t.equal(r.code, 1, 'as configured, no login would work')
    t.match(
      r.out,
      /^client credentials \(probe\)\s+client_secret_basic\s+refused: HTTP 400 invalid_request: .*not properly encoded \(the secret has characters outside printable ASCII, RFC 6749 Appendix A\.2\)\s+BLOCKING$/m,
    )
    // Its client_secret_post is answered invalid_client_metadata, a code RFC
    // 6749 does not define, which says nothing known of the client either.
    t.match(
      r.out,
      /^client credentials with client_secret_post\s+client_secret_post\s+inconclusive: HTTP 400 invalid_client_metadata.*\swarn$/m,
    )
    t.notMatch(r.out, /accepted|set oidc\.clientAuth/, 'no method is said to work')
    t.match(
      r.err,
      /warning: .*oidc\.clientSecret: holds characters outside printable ASCII/,
      'said offline too',
    )
    t.notMatch(`${r.out}${r.err}`, secret, 'the secret is not printed')
  },
)

t.test(
  'an OP that compares Basic credentials raw: basic refused, post accepted, and the check says so',
  async (t) => {
    const secret = 'tilde~secret'
    const dev = await idp(t, { quirks: { rawBasicCredentials: true } }, secret)
    const r = await checkOnline(dev.issuer, `  clientSecret: "${secret}"`)
    t.equal(r.code, 1, 'as configured, no login would work')
    t.match(r.out, /^client credentials \(probe\)\s+client_secret_basic\s+refused: .*BLOCKING$/m)
    t.match(
      r.out,
      /^client credentials with client_secret_post\s+client_secret_post\s+accepted: HTTP 400 invalid_grant.*ok$/m,
    )
    t.match(
      r.out,
      'hint: the identity provider accepts client_secret_post: set oidc.clientAuth: client_secret_post.',
    )
    t.match(
      r.out,
      /hint: client_secret_basic is refused but the same secret is accepted otherwise: the identity provider compares Basic credentials without decoding them/,
    )

    const safe = await idp(t, { quirks: { rawBasicCredentials: true } }, 'my-bff-secret')
    const ok = await checkOnline(safe.issuer, '  clientSecret: my-bff-secret')
    t.equal(ok.code, 0, 'a secret of [A-Za-z0-9*-._] works with the default method')
  },
)

t.test(
  'scopes the IdP does not list: a warn row and one hint each, naming where they are configured',
  async (t) => {
    const dev = await idp(t)
    const r = await checkOnline(
      dev.issuer,
      `  clientSecret: ${SECRET}\n  scopes: [openid, offline_access, email]\n  authorizationParams: { prompt: consent }`,
      '[{ path: /api, upstream: "http://127.0.0.1:1", scopes: [orders.read, orders.write] }]',
    )
    t.equal(r.code, 0, 'a warning, not blocking')
    t.match(
      r.out,
      /^scopes\s+openid offline_access email orders\.read orders\.write\s+not listed: email, orders\.write\s+warn$/m,
    )
    t.match(r.out, 'hint: scope email (oidc.scopes) is not in scopes_supported')
    t.match(r.out, 'hint: scope orders.write (routes[0].scopes) is not in scopes_supported')
    t.notMatch(r.out, /scope orders\.read \(/, 'listed scopes get no hint')
  },
)

t.test(
  'a client certificate refused: the hint speaks of the certificate, not of a secret there is none of',
  async (t) => {
    const pki = makePki(t)
    const client = pki.issue('gatehouse-client')
    const dev = await startDevIdp({
      mtls: {},
      clients: [MTLS_CLIENT],
    })
    t.teardown(() => dev.close())
    // No terminator passes the certificate on: the IdP sees none, and refuses the client.
    const r = await checkOnline(
      dev.issuer,
      `  clientAuth: tls_client_auth\n  tls: { cert: { file: "${client.certFile}" }, key: { file: "${client.keyFile}" } }`,
    )
    t.equal(r.code, 1)
    t.match(r.out, /^client credentials \(probe\)\s+tls_client_auth\s+refused: .*BLOCKING$/m)
    t.match(
      r.out,
      /hint: .*refuses client gatehouse.*: check that the identity provider trusts the CA of the certificate in oidc\.tls\.cert/,
    )
    t.notMatch(r.out, /oidc\.clientSecret/, 'no secret to check')
  },
)

t.test(
  "a client certificate the IdP's TLS server refuses with an alert: refused, blocking, and the hint names the certificate and the alert",
  async (t) => {
    const pki = makePki(t)
    const client = pki.issue('gatehouse-client')
    // The token endpoint's mTLS alias, a month ahead by its clock: it finds the certificate expired.
    const strict = await startStrictTlsServer(t, {
      server: pki.issue('idp-mtls'),
      ca: pki.ca.certFile,
      at: new Date(Date.now() + 30 * 86_400_000),
    })
    const dev = await startDevIdp({
      mtls: {},
      discovery: { mtls_endpoint_aliases: { token_endpoint: `${strict.url}/token` } },
      clients: [MTLS_CLIENT],
    })
    t.teardown(() => dev.close())
    const r = await checkOnline(
      dev.issuer,
      `  clientAuth: tls_client_auth\n  tls: { cert: { file: "${client.certFile}" }, key: { file: "${client.keyFile}" }, ca: { file: "${pki.ca.certFile}" } }`,
    )
    t.equal(r.code, 1, 'no one can sign in: blocking, not "not proven"')
    t.match(
      r.out,
      /^client credentials \(probe\)\s+tls_client_auth\s+refused: TLS \S+_ALERT_CERTIFICATE_EXPIRED .*: the identity provider refused the client certificate of oidc\.tls\.cert \(alert certificate_expired: .*\)\s+BLOCKING$/m,
    )
    const hint = r.out
      .split('\n')
      .find((l) => l.startsWith('hint: the identity provider refused the connection in the TLS handshake'))
    t.match(
      hint,
      /refused the certificate of oidc\.tls\.cert \(.*: CN=gatehouse-client, valid until .*\) in the handshake with alert certificate_expired: renew it/,
    )
    t.ok(hint?.includes(client.certFile), 'the hint names the file')
    t.notMatch(
      r.out,
      /client credentials with self_signed_tls_client_auth/,
      'no other method gets past the handshake',
    )
    t.notMatch(r.out, /PRIVATE KEY/, 'never the key')
  },
)

// Glewlwyd 2.7 looks a refresh token up before it authenticates the
// client, and answers one it does not know with an empty 400, whatever
// the credentials: a canned answer at the dev IdP's edge plays that.
const emptyRefusal = { status: 400, grantType: 'refresh_token' } as const

t.test(
  'a token endpoint whose answer says neither: the revocation endpoint decides, and the row says so',
  async (t) => {
    const dev = await idp(t)
    dev.answer('token', emptyRefusal)
    const r = await checkOnline(dev.issuer, `  clientSecret: ${SECRET}`)
    t.equal(r.code, 0, r.err)
    t.match(
      r.out,
      /^client credentials \(probe\)\s+client_secret_basic\s+accepted at the revocation endpoint: HTTP 200 to a random token \(token endpoint: HTTP 400 that is not JSON\)\s+ok$/m,
    )
    t.match(r.out, /^OK: no blocking mismatch\.$/m)
    t.equal(dev.stats.revocations, 1, 'one revocation request, answered 200 (RFC 7009 §2.2)')
    t.equal(dev.stats.revokedGrants, 0, 'nothing revoked')

    dev.resetStats()
    const wrong = await checkOnline(dev.issuer, '  clientSecret: not-the-secret')
    t.equal(wrong.code, 1, 'a wrong secret fails the check')
    t.match(
      wrong.out,
      /^client credentials \(probe\)\s+client_secret_basic\s+refused at the revocation endpoint: HTTP 401 with WWW-Authenticate: Basic error="invalid_client": client authentication failed \(token endpoint: HTTP 400 that is not JSON\)\s+BLOCKING$/m,
    )
    // RFC 8414 §2: no revocation_endpoint_auth_methods_supported means client_secret_basic only.
    t.match(
      wrong.out,
      /^client credentials with client_secret_post\s+client_secret_post\s+inconclusive: HTTP 400 that is not JSON; the revocation endpoint does not take client_secret_post \(no revocation_endpoint_auth_methods_supported: client_secret_basic only, RFC 8414 §2\)\s+warn$/m,
    )
    t.match(
      wrong.out,
      /hint: the identity provider refuses client gatehouse with client_secret_basic \(client_secret_basic at the revocation endpoint, as the token endpoint's answer said neither\); client_secret_post could not be checked \(see its row\): check oidc\.clientId and oidc\.clientSecret, and the authentication methods the identity provider allows this client/,
    )
    t.match(wrong.out, 'FAIL: Gatehouse cannot log users in with this IdP as configured.')
    t.notMatch(wrong.out, /not-the-secret/)
    t.equal(dev.stats.revocations, 0)
  },
)

t.test(
  'a client authentication method the IdP does not allow this client: refused at the revocation endpoint',
  async (t) => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const dev = await startDevIdp({
      clients: [
        {
          clientId: 'gatehouse',
          tokenEndpointAuthMethod: 'private_key_jwt',
          jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), alg: 'ES256', kid: 'k1', use: 'sig' }] },
          redirectUris: ['http://127.0.0.1:3000/auth/callback'],
        },
      ],
    })
    t.teardown(() => dev.close())
    dev.answer('token', emptyRefusal)
    const r = await checkOnline(dev.issuer, `  clientSecret: ${SECRET}`)
    t.equal(r.code, 1)
    t.match(
      r.out,
      /^client credentials \(probe\)\s+client_secret_basic\s+refused at the revocation endpoint: HTTP 401 .*error="invalid_client".*BLOCKING$/m,
    )
    t.match(r.out, /hint: .*and the authentication methods the identity provider allows this client/)
    t.match(r.out, 'FAIL: Gatehouse cannot log users in with this IdP as configured.')
  },
)

t.test(
  'neither endpoint can say: exit 0, but the output says the credentials were NOT proven, and why',
  async (t) => {
    // The revocation endpoint advertises only a method Gatehouse does not use: it is not asked.
    const listed = await idp(t, {
      discovery: { revocation_endpoint_auth_methods_supported: ['private_key_jwt'] },
    })
    listed.answer('token', emptyRefusal)
    const r = await checkOnline(listed.issuer, '  clientSecret: not-the-secret')
    t.equal(r.code, 0, 'nothing seen rules a login out')
    t.match(
      r.out,
      /^client credentials \(probe\)\s+client_secret_basic\s+inconclusive: HTTP 400 that is not JSON; the revocation endpoint does not take client_secret_basic \(revocation_endpoint_auth_methods_supported: private_key_jwt\)\s+warn$/m,
    )
    t.match(
      r.out,
      /^hint: the client credentials were NOT proven: .*; the first sign-in will \(a refusal is logged at error with what to check\)\.$/m,
    )
    t.match(
      r.out,
      /^OK: no blocking mismatch, but the client credentials were NOT proven \(see the hint\)\.$/m,
    )
    t.equal(listed.stats.revocations, 0, 'the revocation endpoint was not asked')

    const none = await idp(t, { quirks: { noRevocation: true } })
    none.answer('token', emptyRefusal)
    const without = await checkOnline(none.issuer, `  clientSecret: ${SECRET}`)
    t.equal(without.code, 0)
    t.match(
      without.out,
      /^client credentials \(probe\)\s+client_secret_basic\s+inconclusive: HTTP 400 that is not JSON; no revocation_endpoint to ask instead\s+warn$/m,
    )
    t.match(without.out, /NOT proven \(see the hint\)\.$/m)

    const down = await idp(t)
    down.answer('token', emptyRefusal)
    down.answer('revocation', { status: 503, body: 'busy' })
    const both = await checkOnline(down.issuer, `  clientSecret: ${SECRET}`)
    t.equal(both.code, 0)
    t.match(
      both.out,
      /^client credentials \(probe\)\s+client_secret_basic\s+inconclusive: token endpoint: HTTP 400 that is not JSON; revocation endpoint: HTTP 503\s+warn$/m,
    )
  },
)

t.test('network failures name their cause: refused, timeout, TLS', async (t) => {
  const closed = REFUSED_PORT
  const refused = await checkOnline(`http://127.0.0.1:${closed}`, `  clientSecret: ${SECRET}`)
  t.equal(refused.code, 1)
  t.equal(
    refused.err,
    `gatehouse: discovery of http://127.0.0.1:${closed} failed: ECONNREFUSED 127.0.0.1:${closed}`,
  )

  const hanging = await idp(t)
  hanging.setFault('hang')
  const slow = await checkOnline(hanging.issuer, `  clientSecret: ${SECRET}`, '[]', '1s')
  t.match(slow.err, /failed: timed out after 1000 ms \(oidc\.timeout\)$/)

  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-subj',
      '/CN=localhost',
      '-days',
      '1',
    ],
    { stdio: 'ignore' },
  )
  const tls = createServer(
    { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
    (_q, s) => s.end(),
  )
  await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve))
  t.teardown(() => tls.close())
  const selfSigned = await checkOnline(
    `https://localhost:${(tls.address() as AddressInfo).port}`,
    `  clientSecret: ${SECRET}`,
  )
  t.match(selfSigned.err, /failed: TLS DEPTH_ZERO_SELF_SIGNED_CERT \(self-signed certificate\)$/)
  for (const r of [refused, slow, selfSigned]) t.notMatch(r.err, /fetch failed/)
})
