import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError } from '../../src/config/errors.js'
import { parseConfig } from '../../src/config/load.js'

const env = { SESSION_SECRET: 'x'.repeat(32) }

function doc(oidcExtra: string, rest = ''): string {
  return `server:
  publicUrl: https://app.example.com
oidc:
  issuer: https://idp.example.com
  clientId: my-bff
${oidcExtra}
session:
  secret: \${SESSION_SECRET}
${rest}routes: []
`
}

function problems(text: string, vars: NodeJS.ProcessEnv = env, source = 'routes.yaml'): string[] {
  try {
    parseConfig(text, source, vars)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return err.problems.map((p) => `${p.line} ${p.path}: ${p.message}`)
  }
  throw new Error('expected a ConfigError')
}

t.test('authorizationParams, userinfo, par and loginParams resolve with their defaults', async (t) => {
  const config = parseConfig(doc('  clientSecret: s3cret'), 'routes.yaml', env)
  t.same(config.oidc.authorizationParams, {})
  t.equal(config.oidc.userinfo, undefined, 'undefined: on when the IdP advertises userinfo')
  t.equal(config.oidc.par, 'auto')
  t.equal(config.oidc.clientKey, undefined)
  t.same(config.auth.loginParams, ['prompt', 'login_hint', 'ui_locales', 'acr_values'])
  t.equal(config.session.claims, undefined)

  const set = parseConfig(
    doc(
      `  clientSecret: s3cret
  authorizationParams:
    prompt: consent
    access_type: offline
    audience: https://api.example.com
  userinfo: false
  par: required`,
      `auth:
  loginParams: [prompt]
`,
    ).replace('session:\n', 'session:\n  claims: [name, email]\n'),
    'routes.yaml',
    env,
  )
  t.same(set.oidc.authorizationParams, {
    prompt: 'consent',
    access_type: 'offline',
    audience: 'https://api.example.com',
  })
  t.equal(set.oidc.userinfo, false)
  t.equal(set.oidc.par, 'required')
  t.same(set.auth.loginParams, ['prompt'])
  t.same(set.session.claims, ['name', 'email'])
  t.ok(Object.isFrozen(set.oidc.authorizationParams))
})

t.test('a max_age that is not whole seconds is refused, with the field path and the line', async (t) => {
  for (const value of ["'5m'", "'-1'", "'1.5'", "''"]) {
    t.match(
      problems(doc(`  clientSecret: s3cret\n  authorizationParams: { max_age: ${value} }`)),
      [/^7 oidc\.authorizationParams\.max_age: must be a whole number of seconds/],
      value,
    )
  }
  const config = parseConfig(
    doc(`  clientSecret: s3cret\n  authorizationParams: { max_age: '300' }`),
    'routes.yaml',
    env,
  )
  t.same(config.oidc.authorizationParams, { max_age: '300' })
})

t.test('protocol parameters Gatehouse owns are refused, with the field path and the line', async (t) => {
  t.same(
    problems(
      doc(`  clientSecret: s3cret
  authorizationParams:
    prompt: consent
    scope: openid admin
    redirect_uri: https://evil.example
    code_challenge_method: plain`),
    ),
    [
      '9 oidc.authorizationParams.scope: is a protocol parameter Gatehouse sets itself; remove it',
      '10 oidc.authorizationParams.redirect_uri: is a protocol parameter Gatehouse sets itself; remove it',
      '11 oidc.authorizationParams.code_challenge_method: is a protocol parameter Gatehouse sets itself; remove it',
    ],
  )
  for (const name of ['response_type', 'client_id', 'state', 'nonce', 'code_challenge']) {
    t.match(
      problems(doc(`  clientSecret: s3cret\n  authorizationParams: { ${name}: x }`)),
      [new RegExp(`^7 oidc\\.authorizationParams\\.${name}: is a protocol parameter`)],
      name,
    )
  }
  t.same(problems(doc('  clientSecret: s3cret', 'auth:\n  loginParams: [prompt, state]\n')), [
    '10 auth.loginParams[1]: state is a protocol parameter Gatehouse sets itself; remove it',
  ])
  for (const name of ['request', 'request_uri', 'response_mode']) {
    t.match(
      problems(doc(`  clientSecret: s3cret\n  authorizationParams: { ${name}: x }`)),
      [new RegExp(`^7 oidc\\.authorizationParams\\.${name}: is a protocol parameter`)],
      name,
    )
  }
  t.same(
    problems(
      doc(
        '  clientSecret: s3cret',
        'auth:\n  loginParams:\n    - prompt\n    - request\n    - request_uri\n    - response_mode\n    - resource\n    - nonce\n',
      ),
    ),
    [
      '12 auth.loginParams[1]: request is a protocol parameter Gatehouse sets itself; remove it',
      '13 auth.loginParams[2]: request_uri is a protocol parameter Gatehouse sets itself; remove it',
      '14 auth.loginParams[3]: response_mode is a protocol parameter Gatehouse sets itself; remove it',
      '15 auth.loginParams[4]: resource is a protocol parameter Gatehouse sets itself (from routes[].resource); a browser must not choose it; remove it',
      '16 auth.loginParams[5]: nonce is a protocol parameter Gatehouse sets itself; remove it',
    ],
    'every parameter Gatehouse owns, each with its path and line',
  )
  t.equal(
    parseConfig(
      doc('  clientSecret: s3cret\n  authorizationParams: { resource: https://api.example.com }'),
      'r.yaml',
      env,
    ).oidc.authorizationParams.resource,
    'https://api.example.com',
    'resource (RFC 8707) is not reserved',
  )
})

t.test('the client secret is required exactly when the auth method uses it', async (t) => {
  t.same(problems(doc('')), ['3 oidc.clientSecret: is required when clientAuth is client_secret_basic'])
  t.same(problems(doc('  clientAuth: private_key_jwt')), [
    '3 oidc.clientKey: is required when clientAuth is private_key_jwt',
  ])
  t.same(problems(doc('  clientAuth: private_key_jwt\n  clientSecret: s3cret\n  clientKey: { pem: x }')), [
    '7 oidc.clientSecret: is not used with clientAuth: private_key_jwt; remove it',
  ])
  t.same(problems(doc('  clientSecret: s3cret\n  clientKey: { pem: x }')), [
    '7 oidc.clientKey: applies only to clientAuth: private_key_jwt',
  ])
})

t.test(
  'clientKey reads a PEM, a JWK (text or mapping) or a file, into a private JWK with its alg',
  async (t) => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const pem = ec.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
    const jwk = { ...rsa.privateKey.export({ format: 'jwk' }), kid: 'rsa-1' }
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-key-'))
    writeFileSync(join(dir, 'client.pem'), pem)

    const fromEnv = parseConfig(
      doc('  clientAuth: private_key_jwt\n  clientKey: { pem: "${OIDC_CLIENT_KEY}" }'),
      'routes.yaml',
      { ...env, OIDC_CLIENT_KEY: pem },
    )
    t.match(fromEnv.oidc.clientKey!.jwk, { kty: 'EC', crv: 'P-256', alg: 'ES256', d: String })
    t.equal(fromEnv.oidc.clientSecret, undefined)

    const fromJwkText = parseConfig(
      doc('  clientAuth: private_key_jwt\n  clientKey: { jwk: "${OIDC_CLIENT_JWK}" }'),
      'routes.yaml',
      { ...env, OIDC_CLIENT_JWK: JSON.stringify(jwk) },
    )
    t.match(fromJwkText.oidc.clientKey!.jwk, { kty: 'RSA', alg: 'RS256', kid: 'rsa-1' }, 'the kid is kept')
    const thumbprinted = parseConfig(
      doc('  clientAuth: private_key_jwt\n  clientKey: { jwk: "${OIDC_CLIENT_JWK}" }'),
      'routes.yaml',
      { ...env, OIDC_CLIENT_JWK: JSON.stringify({ ...jwk, 'x5t#S256': 'thumb', use: 'sig' }) },
    )
    t.match(
      thumbprinted.oidc.clientKey!.jwk,
      { kid: 'rsa-1', 'x5t#S256': 'thumb' },
      'certificate thumbprints too',
    )
    t.equal(thumbprinted.oidc.clientKey!.jwk.use, undefined, 'nothing else')

    const fromMapping = parseConfig(
      doc(`  clientAuth: private_key_jwt\n  clientKey:\n    jwk: ${JSON.stringify(jwk)}`),
      'routes.yaml',
      env,
    )
    t.match(fromMapping.oidc.clientKey!.jwk, { kty: 'RSA', alg: 'RS256' })

    const fromFile = parseConfig(
      doc('  clientAuth: private_key_jwt\n  clientKey: { file: client.pem }'),
      join(dir, 'routes.yaml'),
      env,
    )
    t.match(
      fromFile.oidc.clientKey!.jwk,
      { kty: 'EC', alg: 'ES256' },
      'a relative file is read beside the config',
    )

    t.same(
      problems(
        doc('  clientAuth: private_key_jwt\n  clientKey: { file: missing.pem }'),
        env,
        join(dir, 'r.yaml'),
      ),
      ['7 oidc.clientKey.file: cannot read the key file: file not found'],
    )
    t.same(
      problems(
        doc('  clientAuth: private_key_jwt\n  clientKey: { file: /dev/null }'),
        env,
        join(dir, 'r.yaml'),
      ),
      [
        '7 oidc.clientKey.file: is a character device, not a regular file: a key file must be a regular file or a symlink to one',
      ],
      'only a regular file is read: a FIFO there would hang the reload that reads it',
    )
    const publicPem = ec.publicKey.export({ format: 'pem', type: 'spki' }).toString()
    const refused = problems(doc('  clientAuth: private_key_jwt\n  clientKey: { pem: "${K}" }'), {
      ...env,
      K: publicPem,
    })
    t.same(
      refused,
      ['7 oidc.clientKey.pem: is not a private key in PEM or JWK form'],
      'a public key is refused',
    )
    t.notMatch(refused.join(''), /BEGIN/, 'the message never carries key material')
    const privatePem = ec.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
    t.same(
      problems(doc('  clientAuth: private_key_jwt\n  clientKey: { pem: "${K}" }'), {
        ...env,
        K: privatePem.trimEnd().replace(/\n/g, '\\n'),
      }),
      [
        '7 oidc.clientKey.pem: is not a private key in PEM or JWK form (it holds the characters \\n where its line breaks belong: give the variable real line breaks, for example VAR="$(cat file.pem)")',
      ],
      'PEM with \\n escapes for its line breaks: the cause is named',
    )
    t.same(
      problems(doc('  clientAuth: private_key_jwt\n  clientKey: { pem: "${K}" }'), {
        ...env,
        // A key-agreement key: a private key in PEM that cannot sign.
        K: generateKeyPairSync('x25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      }),
      ['7 oidc.clientKey.pem: key type x25519 is not supported; use RSA, EC (P-256/384/521) or Ed25519'],
    )
  },
)

t.test('an issuer or client id still holding an example placeholder is named as such', async (t) => {
  const okta = doc('  clientSecret: s3cret').replace(
    'issuer: https://idp.example.com\n  clientId: my-bff',
    'issuer: https://<your-org>.okta.com/oauth2/default\n  clientId: <client id>',
  )
  t.same(problems(okta), [
    "4 oidc.issuer: still holds the placeholder <your-org> from an example: put your identity provider's issuer URL here (see docs/identity-providers.md)",
    '5 oidc.clientId: still holds the placeholder <client id> from an example: put the client id registered at your identity provider here',
  ])
  const entra = doc('  clientSecret: s3cret').replace(
    'https://idp.example.com',
    'https://login.microsoftonline.com/{tenantid}/v2.0',
  )
  t.match(problems(entra), ['4 oidc.issuer: still holds the placeholder {tenantid} from an example'])
  t.same(
    problems(doc('  clientSecret: s3cret').replace('https://idp.example.com', 'idp.example.com')),
    ['4 oidc.issuer: must be an https URL'],
    'a URL that is simply wrong keeps its message',
  )
})
