import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto'
import t, { type Test } from 'tap'
import type { DevClient, DevIdp } from '../../dev/idp.js'
import { compare } from '../../src/cli/check-online.js'
import { fapi2Incompatibility } from '../../src/oidc/fapi2.js'
import { makePki } from '../helpers/certificates.js'
import { boundTo, watchProofs } from '../helpers/dpop.js'
import { DpopVerifier, startDpopUpstream } from '../helpers/dpop-resource-server.js'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall, followLoginFlow, jarFetch, login } from '../helpers/login.js'
import { startMtlsFront } from '../helpers/mtls-front.js'
import { type StackOptions, startStack } from '../helpers/stack.js'

/**
 * `oidc.profile: fapi2` against oidc-provider in FAPI 2.0 mode
 * (`features.fapi` profile 2.0: PKCE required, client assertions with the
 * issuer as sole audience), with PAR required of the client and ID tokens
 * signed ES256. The client authenticates with private_key_jwt. Its access
 * tokens are sender-constrained by `binding`: mTLS (behind a terminator
 * that asks for client certificates), or DPoP, with the IdP requiring
 * bound tokens and nonces.
 */
async function fapiStack(
  t: Test,
  {
    client = {},
    signingKey = 'ec',
    binding = 'mtls',
    routes,
    gateway,
    quirks,
  }: {
    client?: Partial<DevClient>
    signingKey?: 'ec' | 'rsa' | 'both'
    binding?: 'mtls' | 'dpop'
    routes?: StackOptions['routes']
    gateway?: StackOptions['gateway']
    /** Deviations of the IdP (dev/idp-quirks.ts). */
    quirks?: NonNullable<StackOptions['idp']>['quirks']
  } = {},
) {
  const signing = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const assertionKey = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const mtls = binding === 'mtls' ? await mtlsBinding(t) : undefined
  const stack = await startStack(t, {
    idp: {
      par: true,
      fapi: true,
      // An RSA key without `alg` signs RS256 and PS256 alike, and the IdP advertises both.
      signingKey: [
        ...(signingKey === 'rsa'
          ? []
          : [
              { ...signing.privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: 'idp-es256' },
            ]),
        ...(signingKey === 'ec'
          ? []
          : [
              {
                ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
                use: 'sig',
                kid: 'idp-rsa',
              },
            ]),
      ],
      ...(mtls ? mtls.idp : { dpopNonce: true }),
      ...(quirks ? { quirks } : {}),
    },
    client: {
      clientSecret: undefined,
      tokenEndpointAuthMethod: 'private_key_jwt',
      jwks: { keys: [{ ...assertionKey.publicKey.export({ format: 'jwk' }), alg: 'ES256', kid: 'bff-1' }] },
      requirePushedAuthorizationRequests: true,
      idTokenSignedResponseAlg: 'ES256',
      ...(mtls ? { certificateBoundAccessTokens: true } : { dpopBoundAccessTokens: true }),
      ...client,
    },
    config: {
      logLevel: 'info',
      oidc: {
        profile: 'fapi2',
        clientAuth: 'private_key_jwt',
        clientSecret: undefined,
        clientKey: {
          jwk: { ...assertionKey.privateKey.export({ format: 'jwk' }), alg: 'ES256', kid: 'bff-1' },
        },
        ...(mtls ? { tls: mtls.tls } : { dpop: true }),
      },
    },
    ...(routes ? { routes } : {}),
    ...(gateway ? { gateway } : {}),
  })
  mtls?.point(Number(new URL(stack.idp.issuer).port))
  return { stack, certificate: mtls?.certificate }
}

/** A client certificate, and a terminator in front of the IdP that asks for it (RFC 8705). */
async function mtlsBinding(t: Test) {
  const pki = makePki(t)
  const server = pki.issue('idp-mtls')
  const certificate = pki.issue('gatehouse-client')
  let idpPort = 0
  const front = await startMtlsFront(() => idpPort, { cert: server.cert, key: server.key, ca: pki.ca.cert })
  t.teardown(() => front.close())
  return {
    certificate,
    point: (port: number) => {
      idpPort = port
    },
    idp: {
      mtls: {},
      discovery: {
        mtls_endpoint_aliases: {
          token_endpoint: `${front.url}/token`,
          revocation_endpoint: `${front.url}/token/revocation`,
          userinfo_endpoint: `${front.url}/me`,
          pushed_authorization_request_endpoint: `${front.url}/request`,
        },
      },
    },
    tls: {
      cert: { file: certificate.certFile },
      key: { file: certificate.keyFile },
      ca: { file: pki.ca.certFile },
    },
  }
}

t.test(
  'profile fapi2: a login through PAR, with iss checked, an ES256 ID token and an mTLS-bound token',
  async (t) => {
    const { stack, certificate } = await fapiStack(t)
    t.equal(stack.config.oidc.par, 'required', 'the profile turns PAR on')
    const client = await stack.idp.provider.Client.find('gatehouse-test')
    t.equal(client?.requirePushedAuthorizationRequests, true)
    const { jar, callback, responses, callbackUrl } = await login(stack.gateway.url, { user: 'wren' })
    t.equal(callback.status, 302)
    const authorize = new URL(responses[0]!.location!)
    t.same(
      [...authorize.searchParams.keys()].sort(),
      ['client_id', 'request_uri'],
      'only request_uri in the browser (RFC 9126)',
    )
    t.equal(
      new URL(callbackUrl).searchParams.get('iss'),
      stack.idp.issuer,
      'RFC 9207 iss came back and was checked',
    )
    t.equal((await apiCall(jar, `${stack.gateway.url}/api/orders`)).status, 200)
    const token = stack.upstream.requests.at(-1)?.authorization?.replace(/^Bearer /, '')
    const stored = await stack.idp.provider.AccessToken.find(token!)
    t.equal(
      stored?.['x5t#S256'],
      createHash('sha256').update(new X509Certificate(certificate!.cert).raw).digest('base64url'),
      'sender-constrained: bound to the client certificate',
    )

    const report = compare(stack.config, stack.gateway.app.gatehouse.oidc.metadata!)
    const fapi = report.rows.filter((r) => r.capability.startsWith('FAPI 2.0'))
    t.ok(fapi.length >= 8, 'check --online prints each requirement of the profile')
    t.equal(
      fapi.find((r) => r.capability === 'FAPI 2.0: TLS (§5.2.1)')?.advertised,
      'http (loopback host)',
      'the issuer scheme in words',
    )
    t.same(
      fapi.filter((r) => r.verdict !== 'ok').map((r) => r.capability),
      [],
      'and this IdP meets them all',
    )
    t.equal(report.blocking, false)
  },
)

t.test(
  'profile fapi2 refuses an ID token signed RS256 (§5.4.1), though the IdP could sign PS256',
  async (t) => {
    // No ES256 key: the IdP's RSA key signs RS256 for this client, and could sign PS256.
    const { stack } = await fapiStack(t, { signingKey: 'rsa', client: { idTokenSignedResponseAlg: 'RS256' } })
    t.ok(stack.gateway.app.gatehouse.oidc.metadata?.id_token_signing_alg_values_supported?.includes('PS256'))
    const { callback } = await login(stack.gateway.url, { user: 'xan' })
    t.equal(callback.status, 400, 'the ID token is refused, no session')
    t.match(callback.text, /Sign-in failed/)
    t.equal(stack.idp.stats.authorizationCodeGrants, 1, 'refused after the code exchange, at the ID token')
  },
)

t.test(
  'profile fapi2 takes an ID token signed with any of PS256, ES256 and EdDSA the IdP offers, not only the first',
  async (t) => {
    for (const alg of ['ES256', 'PS256'] as const) {
      const { stack } = await fapiStack(t, { signingKey: 'both', client: { idTokenSignedResponseAlg: alg } })
      const offered = stack.gateway.app.gatehouse.oidc.metadata?.id_token_signing_alg_values_supported
      t.ok(offered?.includes('PS256') && offered.includes('ES256'), `the IdP offers both (${offered})`)
      const { callback } = await login(stack.gateway.url, { user: 'wes' })
      t.equal(callback.status, 302, `an ID token signed ${alg}: signed in`)
      const report = compare(stack.config, stack.gateway.app.gatehouse.oidc.metadata!)
      t.equal(report.blocking, false, 'and check --online agrees')
    }
  },
)

t.test(
  'profile fapi2 requires iss (RFC 9207): a callback without it is refused, an IdP without it blocks',
  async (t) => {
    const { stack } = await fapiStack(t)
    const start = await login(stack.gateway.url, { user: 'yan' }).catch((err: Error) => err)
    t.notOk(start instanceof Error)
    // The same flow again, with iss taken off the way back, as a mix-up attacker's IdP would (RFC 9207 §1).
    const { jar } = await login(stack.gateway.url, { user: 'yan' })
    const again = await jarFetch(jar, `${stack.gateway.url}/auth/login?returnTo=/`)
    const callbackUrl = new URL(await followLoginFlow(jar, again.location!, 'yan', []))
    callbackUrl.searchParams.delete('iss')
    const callback = await jarFetch(jar, callbackUrl.href)
    t.equal(callback.status, 400, 'no iss: refused')

    const metadata = {
      ...stack.gateway.app.gatehouse.oidc.metadata!,
      authorization_response_iss_parameter_supported: false,
    }
    t.match(
      fapi2Incompatibility(stack.config.oidc, metadata),
      /authorization_response_iss_parameter_supported/,
    )
    const report = compare(stack.config, metadata)
    t.match(
      report.rows.find((r) => r.capability.includes('iss response parameter')),
      { verdict: 'BLOCKING' },
    )
    t.equal(report.blocking, true, 'check --online fails')
  },
)

t.test(
  'profile fapi2 with oidc.dpop: an IdP that advertises no DPoP blocks the logins and /readyz',
  async (t) => {
    const { stack } = await fapiStack(t, { binding: 'dpop' })
    const metadata = stack.gateway.app.gatehouse.oidc.metadata!
    t.equal(fapi2Incompatibility(stack.config.oidc, metadata), undefined, 'as advertised: compatible')
    t.match(
      fapi2Incompatibility(stack.config.oidc, { ...metadata, dpop_signing_alg_values_supported: [] }),
      /dpop_signing_alg_values_supported/,
      'an empty list is none',
    )
    // The IdP's metadata as discovered, without DPoP (oidc-provider with its dPoP feature off).
    delete (metadata as { dpop_signing_alg_values_supported?: unknown }).dpop_signing_alg_values_supported
    const tokenRequests = stack.idp.stats.tokenRequests
    const start = await fetch(`${stack.gateway.url}/auth/login?returnTo=/`, { redirect: 'manual' })
    t.equal(start.status, 503, 'the login stops before the IdP')
    t.match(await start.text(), /Sign-in is misconfigured.*dpop_signing_alg_values_supported/s)
    t.equal(stack.idp.stats.tokenRequests, tokenRequests)
    const ready = await fetch(`${stack.gateway.url}/readyz`)
    t.equal(ready.status, 503, '/readyz says why')
    t.match(await ready.text(), /dpop_signing_alg_values_supported/)
  },
)

/**
 * A list of the discovery document sent as a number or an object (RFC
 * 8414 §2 makes each a JSON array of strings) made the profile's checks
 * throw a TypeError: `/readyz` answered 500, and so did every login; an
 * ID token algorithm list so sent failed discovery half way, its document
 * kept, so `/readyz` threw on it for good. Such a list is now read as not
 * listed, as `check --online` reads it.
 */
t.test(
  'profile fapi2: a list the IdP sends as no list is read as not listed; /readyz and the login say why, never a 500',
  async (t) => {
    for (const [field, value, named] of [
      ['code_challenge_methods_supported', 5, /PKCE S256 \(code_challenge_methods_supported\)/],
      ['id_token_signing_alg_values_supported', { ES256: true }, /id_token_signing_alg_values_supported/],
    ] as const) {
      const { stack } = await fapiStack(t, {
        binding: 'dpop',
        quirks: { discoveryDocument: (doc) => ({ ...doc, [field]: value }) },
      })
      const ready = await fetch(`${stack.gateway.url}/readyz`)
      t.equal(ready.status, 503, `${field}: /readyz answers, not ready`)
      t.match(await ready.json(), { status: 'not_ready', checks: { idp: named } }, `${field}: and says why`)
      const start = await fetch(`${stack.gateway.url}/auth/login?returnTo=/`, { redirect: 'manual' })
      t.equal(start.status, 503, `${field}: the login stops before the IdP`)
      t.match(await start.text(), named)
      await stack.close()
    }
  },
)

t.test(
  'profile fapi2 with oidc.dpop: a login through PAR with the code bound to the key, an API call whose proof the upstream verifies, and a refresh',
  async (t) => {
    const clock = new TestClock()
    let idp: DevIdp | undefined
    const verifier = new DpopVerifier((token) => boundTo(idp!, token))
    const upstream = await startDpopUpstream(verifier)
    t.teardown(() => upstream.close())
    const { stack } = await fapiStack(t, {
      binding: 'dpop',
      gateway: { now: clock.now },
      routes: () => [route('/api/orders', upstream.url)],
    })
    idp = stack.idp
    t.equal(stack.config.oidc.par, 'required')
    const proofs = watchProofs(stack.idp)
    const { jar, callback, responses, callbackUrl } = await login(stack.gateway.url, { user: 'zoe' })
    t.equal(callback.status, 302, callback.text)
    t.same([...new URL(responses[0]!.location!).searchParams.keys()].sort(), ['client_id', 'request_uri'])
    t.equal(new URL(callbackUrl).searchParams.get('iss'), stack.idp.issuer, 'RFC 9207 iss checked')
    const code = proofs.find((p) => p.grant === 'authorization_code' && p.nonce !== undefined)
    t.ok(code, 'the code exchange carried a proof with the IdP nonce')
    await proofs.settled()
    const sessionJkt = code!.jkt

    const first = await apiCall(jar, `${stack.gateway.url}/api/orders`)
    t.equal(first.status, 200, first.text)
    t.match(upstream.seen.at(-1)?.headers.authorization, /^DPoP /, 'the token goes with the DPoP scheme')
    const firstToken = upstream.seen.at(-1)!.headers.authorization!.slice(5)
    t.equal(await boundTo(stack.idp, firstToken), sessionJkt, "bound to the session's key")

    clock.advance(61_000)
    stack.idp.resetStats()
    const second = await apiCall(jar, `${stack.gateway.url}/api/orders`)
    t.equal(second.status, 200, second.text)
    t.equal(stack.idp.stats.refreshGrants, 1, 'the expired token was refreshed')
    t.equal(stack.idp.stats.refreshReplays, 0)
    t.equal(stack.idp.stats.dpopTokenRequests, stack.idp.stats.tokenRequests, 'with a proof')
    t.equal(proofs.at(-1)!.grant, 'refresh_token')
    await proofs.settled()
    t.equal(proofs.at(-1)!.jkt, sessionJkt, 'of the same key')
    const secondToken = upstream.seen.at(-1)!.headers.authorization!.slice(5)
    t.not(secondToken, firstToken, 'the upstream got the new token')
    t.equal(await boundTo(stack.idp, secondToken), sessionJkt, 'bound to the same key')
    t.same(
      upstream.verdicts.filter((v) => !v.ok),
      [],
      'the upstream verified every proof: signature, htm, htu, ath, iat, jti, cnf.jkt',
    )

    const report = compare(stack.config, stack.gateway.app.gatehouse.oidc.metadata!)
    t.same(
      report.rows
        .filter((r) => r.capability.startsWith('FAPI 2.0') && r.verdict !== 'ok')
        .map((r) => r.capability),
      [],
      'check --online: this IdP meets every requirement with DPoP-bound tokens',
    )
  },
)
