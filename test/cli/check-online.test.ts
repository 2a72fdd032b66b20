import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { main } from '../../src/cli/main.js'
import { checkOnline, devIdpForCheck, CHECK_DIR as dir } from '../helpers/check-online.js'
import { REFUSED_URL } from '../helpers/ports.js'

const idp = devIdpForCheck

/** The result column of one row of the table. */
function verdict(out: string, capability: string): string | undefined {
  const line = out.split('\n').find((l) => l.startsWith(capability))
  return line?.trim().split(/\s+/).at(-1)
}

t.test('strict profile, as configured for it: a full table, no blocking mismatch', async (t) => {
  // It takes the default logout, a POST to its end-session endpoint, as
  // RP-Initiated Logout 1.0 §2 asks (check-online-end-session-without-post.test.ts).
  const strict = await idp(t, { endSessionPost: true })
  const r = await checkOnline(
    strict.issuer,
    '  clientSecret: s3cret\n  authorizationParams: { prompt: consent }',
  )
  t.equal(r.code, 0, r.err)
  t.match(r.out, `IdP: ${strict.issuer}`)
  for (const capability of [
    'refresh tokens',
    'PKCE S256',
    'client authentication',
    'revocation (RFC 7009)',
    'end-session',
    'back-channel logout',
    'userinfo',
    'RFC 9207 iss',
  ]) {
    t.equal(verdict(r.out, capability), 'ok', capability)
  }
  t.match(r.out, /^PAR \(RFC 9126\)\s+auto\s+no\s+ok$/m, 'auto and not advertised: fine')
  t.notMatch(r.out, /hint:/, 'no hint')
  t.match(r.out, 'OK: no blocking mismatch.')
})

t.test('strict profile without prompt=consent: the OIDC Core §11 hint, still exit 0', async (t) => {
  const strict = await idp(t)
  const r = await checkOnline(strict.issuer)
  t.equal(r.code, 0)
  t.match(r.out, 'hint: offline_access requested: if this provider follows OIDC Core §11')
  t.match(r.out, 'add authorizationParams.prompt: consent')
})

t.test('lenient profile: the same table (the hint is about the config, not the profile)', async (t) => {
  const lenient = await idp(t, { profile: 'lenient' })
  const r = await checkOnline(
    lenient.issuer,
    '  clientSecret: s3cret\n  authorizationParams: { prompt: consent }',
  )
  t.equal(r.code, 0)
  t.equal(verdict(r.out, 'refresh tokens'), 'ok')
})

t.test(
  'private_key_jwt: advertised but the key is not registered, or not advertised: BLOCKING',
  async (t) => {
    const pem = (await import('node:crypto'))
      .generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ format: 'pem', type: 'pkcs8' })
      .toString()
    writeFileSync(join(dir, 'client.pem'), pem)
    const keyed = '  clientAuth: private_key_jwt\n  clientKey: { file: client.pem }'
    const full = await idp(t)
    const unregistered = await checkOnline(full.issuer, keyed)
    t.match(unregistered.out, /^client authentication\s+private_key_jwt\s+.*private_key_jwt.*\s+ok$/m)
    t.match(
      unregistered.out,
      /^client credentials \(probe\)\s+private_key_jwt\s+refused: HTTP 401 invalid_client: .*\s+BLOCKING$/m,
      'advertised is not enough: the IdP has no key for this client, and the probe says so',
    )
    t.equal(unregistered.code, 1)

    const secretsOnly = await idp(t, { clientAuthMethods: ['client_secret_basic', 'client_secret_post'] })
    const blocked = await checkOnline(secretsOnly.issuer, keyed)
    t.equal(blocked.code, 1, 'exit 1')
    t.match(
      blocked.out,
      /^client authentication\s+private_key_jwt\s+client_secret_basic, client_secret_post\s+BLOCKING$/m,
    )
    t.match(blocked.out, 'FAIL: Gatehouse cannot log users in with this IdP as configured.')
  },
)

t.test(
  'PAR: required and missing is BLOCKING; required by the IdP and off is BLOCKING; both on is ok',
  async (t) => {
    const withoutPar = await idp(t)
    const missing = await checkOnline(withoutPar.issuer, '  clientSecret: s3cret\n  par: required')
    t.equal(missing.code, 1)
    t.match(missing.out, /^PAR \(RFC 9126\)\s+required\s+no\s+BLOCKING$/m)

    const withPar = await idp(t, { par: true })
    const ok = await checkOnline(withPar.issuer, '  clientSecret: s3cret\n  par: required')
    t.equal(ok.code, 0)
    t.match(ok.out, /^PAR \(RFC 9126\)\s+required\s+yes\s+ok$/m)

    const requiring = await idp(t, { par: true, discovery: { require_pushed_authorization_requests: true } })
    const off = await checkOnline(requiring.issuer, '  clientSecret: s3cret\n  par: off')
    t.equal(off.code, 1)
    t.match(off.out, /^PAR \(RFC 9126\)\s+off\s+required\s+BLOCKING$/m)
    t.match(off.out, 'hint: the IdP requires pushed authorization requests: set oidc.par: auto.')
  },
)

t.test(
  'userinfo-only profile claims: userinfo advertised; an IdP without it, when userinfo: true, warns',
  async (t) => {
    const userinfo = await idp(t, { profileClaims: 'userinfo' })
    const r = await checkOnline(userinfo.issuer)
    t.match(r.out, /^userinfo\s+if advertised\s+yes\s+ok$/m)
    const none = await idp(t, { userinfo: false })
    const forced = await checkOnline(none.issuer, '  clientSecret: s3cret\n  userinfo: true')
    t.equal(forced.code, 0, 'not blocking: the ID token claims remain')
    t.match(forced.out, /^userinfo\s+yes\s+no\s+warn$/m)
  },
)

t.test('an unreachable issuer: one line, exit 1', async (t) => {
  const r = await checkOnline(REFUSED_URL)
  t.equal(r.code, 1)
  t.match(r.err, /^gatehouse: discovery of http:\/\/127\.0\.0\.1:\d+ failed: /)
  t.notMatch(r.err, /\n\s+at /, 'no stack trace')
})

t.test('an issuer the IdP does not advertise: one line naming both, exit 1', async (t) => {
  const dev = await idp(t, { quirks: { advertisedIssuer: (issuer) => `${issuer}/realms/demo\u001b[31m` } })
  const r = await checkOnline(dev.issuer)
  t.equal(r.code, 1)
  t.equal(
    r.err,
    `gatehouse: discovery of ${dev.issuer} failed: the identity provider advertises issuer "${dev.issuer}/realms/demo [31m" but oidc.issuer is "${dev.issuer}": they must be identical (OpenID Connect Discovery 1.0 §4.3); set oidc.issuer to the advertised value if this is the provider you mean`,
  )
  t.equal(r.out.includes('IdP:'), false, 'no table for a provider that was not discovered')
})

t.test('offline check stays offline: an unreachable issuer is fine without --online', async (t) => {
  const file = join(dir, 'offline.yaml')
  const issuer = REFUSED_URL
  writeFileSync(
    file,
    `server: { publicUrl: http://127.0.0.1:3000 }\noidc: { issuer: "${issuer}", clientId: g, clientSecret: s }\nsession: { secret: "${'s'.repeat(32)}" }\nroutes: []\n`,
  )
  const out: string[] = []
  const code = await main(['check', '-c', file], {
    stdout: (l) => out.push(l),
    stderr: () => {},
    env: {},
    start: async () => {},
  })
  t.equal(code, 0)
  t.same(out, [
    `OK: ${file} (0 routes)`,
    'redirect URI to register at default: http://127.0.0.1:3000/auth/callback',
  ])
})

t.test('gatehouse check refuses a reserved authorization parameter with file, line and path', async (t) => {
  const r = await checkOnline(
    'http://127.0.0.1:1',
    '  clientSecret: s3cret\n  authorizationParams:\n    prompt: consent\n    redirect_uri: https://evil.example',
  )
  t.equal(r.code, 1)
  t.match(
    r.err,
    /routes-\d+\.yaml:9 oidc\.authorizationParams\.redirect_uri: is a protocol parameter Gatehouse sets itself; remove it/,
  )
  t.equal(r.out, '', 'nothing checked online before the file is right')
})

t.test(
  'a configured prompt the IdP does not advertise in prompt_values_supported: warn and a hint',
  async (t) => {
    const advertising = await idp(t, { discovery: { prompt_values_supported: ['none', 'login'] } })
    const r = await checkOnline(
      advertising.issuer,
      '  clientSecret: s3cret\n  authorizationParams: { prompt: consent }',
    )
    t.equal(r.code, 0)
    t.match(r.out, /^prompt \(authorizationParams\)\s+consent\s+none, login\s+warn$/m)
    t.match(r.out, 'hint: authorizationParams.prompt: consent is not in prompt_values_supported')
    const fine = await checkOnline(
      advertising.issuer,
      '  clientSecret: s3cret\n  authorizationParams: { prompt: login }',
    )
    t.match(fine.out, /^prompt \(authorizationParams\)\s+login\s+none, login\s+ok$/m)
  },
)
