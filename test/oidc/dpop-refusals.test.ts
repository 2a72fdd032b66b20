/**
 * What a refusal of the DPoP proof does, call by call (src/oidc/answers.ts):
 * where a proof went, the IdP refused the proof, not the grant, and the
 * answer says so and keeps the session; where none went (a `dpop: false`
 * route's own token), the IdP is asking for one that the route's config
 * will never send, and only that route is refused, with the advice to fix it.
 */
import t, { type Test } from 'tap'
import { generateDpopKey } from '../../src/dpop/keys.js'
import type { TokenAudience, TokenSet } from '../../src/types.js'
import { discoveredClient, metadata, tokenAnswer } from '../helpers/mock-idp.js'

const current: TokenSet = {
  accessToken: 'at-old',
  accessTokenExpiresAt: 0,
  refreshToken: 'rt-the-session-holds-it-0123456789',
  refreshTokenExpiresAt: undefined,
  idToken: 'id-old',
}

const route = (dpop: boolean): TokenAudience => ({
  key: 'r',
  resource: 'https://api.test',
  scopes: [],
  label: 'https://api.test',
  dpop,
})

const dpopClient = (t: Test) =>
  discoveredClient(t, {
    oidc: { dpop: true },
    metadata: metadata({ dpop_signing_alg_values_supported: ['ES256'] }),
  })

const refusal = { error: 'invalid_dpop_proof', error_description: 'DPoP proof is missing' }

t.test('a route token asked for with a proof: the proof refused, 503, the session kept', async (t) => {
  const { idp, oidc, failures } = await dpopClient(t)
  void tokenAnswer(idp, 400, refusal)
  await t.rejects(oidc.refresh(current, route(true), await generateDpopKey('ES256')), {
    code: 'GATEHOUSE_ERR_DPOP_PROOF_REFUSED',
  })
  t.match(failures, [{ operation: 'route_refresh', verdict: 'unavailable' }])
})

t.test(
  'a dpop: false route’s token, asked for without a proof: only the route is refused, with the advice',
  async (t) => {
    const { idp, oidc, failures } = await dpopClient(t)
    void tokenAnswer(idp, 400, refusal)
    await t.rejects(oidc.refresh(current, route(false), await generateDpopKey('ES256')), {
      code: 'GATEHOUSE_ERR_RESOURCE_REFUSED',
      message: /dpop: false/,
    })
    t.match(failures, [{ operation: 'unbound_route_refresh', verdict: 'route_refused' }])
  },
)
