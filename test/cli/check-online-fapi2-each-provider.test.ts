import { generateKeyPairSync } from 'node:crypto'
import t, { type Test } from 'tap'
import { type DevIdpOptions, startDevIdp } from '../../dev/idp.js'
import { runCheckOnline } from '../helpers/check-online.js'

const assertionKey = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const publicJwk = { ...assertionKey.publicKey.export({ format: 'jwk' }), alg: 'ES256', kid: 'bff-1' }
const privateJwk = { ...assertionKey.privateKey.export({ format: 'jwk' }), alg: 'ES256', kid: 'bff-1' }

/** A dev IdP that signs ID tokens ES256 and knows the client by its assertion key, each at `/callback/<name>`. */
async function idp(t: Test, name: string, options: Partial<DevIdpOptions>) {
  const started = await startDevIdp({
    signingKey: {
      ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }),
      alg: 'ES256',
      use: 'sig',
      kid: 'idp-es256',
    },
    ...options,
    clients: [
      {
        clientId: 'gatehouse',
        tokenEndpointAuthMethod: 'private_key_jwt',
        jwks: { keys: [publicJwk] },
        idTokenSignedResponseAlg: 'ES256',
        redirectUris: [`http://127.0.0.1:3000/auth/callback/${name}`],
        ...(options.par ? { requirePushedAuthorizationRequests: true } : {}),
        dpopBoundAccessTokens: true,
      },
    ],
  })
  t.teardown(() => started.close())
  return started
}

const fapi2Provider = (name: string, issuer: string) =>
  `  - name: ${name}
    issuer: "${issuer}"
    clientId: gatehouse
    profile: fapi2
    clientAuth: private_key_jwt
    clientKey: { jwk: '${JSON.stringify(privateJwk)}' }
    dpop: true
    timeout: 30s`

t.test(
  'check --online judges each FAPI 2.0 provider against its own IdP and names the one that falls short',
  async (t) => {
    const corp = await idp(t, 'corp', { par: true, fapi: true })
    // No PAR (RFC 9126), which FAPI 2.0 §5.3.2.2 requires.
    const partner = await idp(t, 'partner', { par: false })
    const run = await runCheckOnline(`server: { publicUrl: http://127.0.0.1:3000 }
identityProviders:
${fapi2Provider('corp', corp.issuer)}
${fapi2Provider('partner', partner.issuer)}
session: { secret: "${'s'.repeat(32)}" }
routes: []
`)
    t.equal(run.code, 1, 'partner cannot serve the profile: exit 1')
    t.match(run.out, `IdP: partner: ${partner.issuer}`, "partner is read from its own IdP's document")
    const [corpPart, partnerPart = ''] = run.out.split('IdP: partner:')
    t.match(corpPart, `IdP: corp: ${corp.issuer}`)
    t.match(corpPart, /FAPI 2\.0: PAR \(§5\.3\.2\.2\)\s+required\s+yes\s+ok/, 'corp is judged by its own IdP')
    t.match(corpPart, /OK: no blocking mismatch/, 'corp meets the profile')
    t.match(
      partnerPart,
      /FAPI 2\.0: PAR \(§5\.3\.2\.2\)\s+required\s+no\s+BLOCKING/,
      "partner's PAR row blocks",
    )
    t.match(partnerPart, /FAIL: Gatehouse cannot log users in/, 'partner is named failing')
    t.equal(run.err, '', 'nothing on stderr')
  },
)
