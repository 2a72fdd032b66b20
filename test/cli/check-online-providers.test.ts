import t, { type Test } from 'tap'
import { startDevIdp } from '../../dev/idp.js'
import { runCheckOnline } from '../helpers/check-online.js'
import { REFUSED_URL } from '../helpers/ports.js'

async function idp(t: Test, clientSecret: string) {
  const started = await startDevIdp({
    clients: [{ clientId: 'gatehouse', clientSecret, redirectUris: ['http://127.0.0.1:3000/auth/callback'] }],
  })
  t.teardown(() => started.close())
  return started
}

/**
 * `gatehouse check --online` on two providers, both configured with secret
 * s3cret; 30 s each, as both IdPs answer from this process's event loop,
 * which a loaded machine holds past the product's budgets.
 */
function checkOnline(corp: string, partner: string) {
  return runCheckOnline(`server: { publicUrl: http://127.0.0.1:3000 }
identityProviders:
  - { name: corp, issuer: "${corp}", clientId: gatehouse, clientSecret: s3cret, timeout: 30s }
  - { name: partner, issuer: "${partner}", clientId: gatehouse, clientSecret: s3cret, timeout: 30s }
session: { secret: "${'s'.repeat(32)}" }
routes: []
`)
}

t.test('check --online checks each provider and fails when one cannot log anyone in', async (t) => {
  const corp = await idp(t, 's3cret')
  const partner = await idp(t, 'another-secret')
  const both = await checkOnline(corp.issuer, partner.issuer)
  t.equal(both.code, 1, 'partner refuses the configured secret: exit 1')
  t.match(both.out, `IdP: corp: ${corp.issuer}`)
  t.match(both.out, `IdP: partner: ${partner.issuer}`)
  const [corpPart, partnerPart] = both.out.split('IdP: partner:')
  t.match(corpPart, /OK: no blocking mismatch/, 'corp is fine')
  t.match(partnerPart, /FAIL: Gatehouse cannot log users in/, 'partner is not')

  const down = await checkOnline(corp.issuer, REFUSED_URL)
  t.equal(down.code, 1)
  t.match(down.err, /partner: discovery of .* failed: ECONNREFUSED/, 'the unreachable provider is named')
  t.match(down.out, `IdP: corp: ${corp.issuer}`, 'the other is still checked')
})
