/**
 * With several identity providers, /readyz's `checks.clientAuth` and the
 * `gatehouse_idp_client_refused` gauge follow each provider's refusals of
 * the gateway's credentials apart: they were kept by operation alone, so a
 * refresh that one provider accepted cleared another's refusal of its
 * refresh, and a misconfigured provider vanished from /readyz while it
 * still refused every refresh.
 */
import { pino } from 'pino'
import t from 'tap'
import { ClientRefusals } from '../../src/oidc/client-refusals.js'
import type { IdpFailure } from '../../src/oidc/translate.js'
import { idpObserver } from '../../src/server/idp-observer.js'
import { GatewayMetrics } from '../../src/server/metrics.js'
import { testConfig } from '../helpers/gateway.js'

const refusedRefresh: IdpFailure = {
  operation: 'refresh',
  answer: 'invalid_client',
  verdict: 'client_refused',
  status: 401,
  reason: 'HTTP 401 invalid_client',
}

t.test("one provider accepting a refresh does not clear another's refusal of it", async (t) => {
  const config = testConfig({
    port: 3000,
    issuer: 'http://127.0.0.1:4001',
    routes: [],
    identityProviders: [
      { name: 'corp', issuer: 'http://127.0.0.1:4001' },
      { name: 'partner', issuer: 'http://127.0.0.1:4002' },
    ],
  })
  const [corp, partner] = config.identityProviders
  const metrics = new GatewayMetrics()
  const refusals = new ClientRefusals()
  const observe = (p: typeof corp) => idpObserver(p!, pino({ level: 'silent' }), metrics, refusals)
  const gauge = async () => (await metrics.idpClientRefused.get()).values[0]?.value

  observe(partner).failed?.(refusedRefresh)
  observe(corp).accepted?.('refresh')
  t.equal(refusals.any, true, 'partner still refuses')
  t.match(refusals.detail, /refresh at partner \(invalid_client\)/, '/readyz names the provider that refuses')
  t.equal(await gauge(), 1)

  observe(partner).accepted?.('refresh')
  t.equal(refusals.detail, undefined, 'cleared by the provider that refused')
  t.equal(await gauge(), 0)
})

t.test('the oidc: shorthand is reported as before, without a provider name', async (t) => {
  const refusals = new ClientRefusals()
  refusals.refused('default', refusedRefresh)
  t.equal(
    refusals.detail,
    "the identity provider refuses the gateway's client credentials: refresh (invalid_client); see the error log for the hint",
  )
})
