/**
 * How a failed exchange is counted and logged, from what the IdP answered
 * (at the HTTP seam, undici's MockAgent): a refused DPoP proof is said to be
 * one, as a refresh's is, not an outage.
 */
import t from 'tap'
import { generateDpopKey } from '../../src/dpop/keys.js'
import { idpFailureOf } from '../../src/oidc/translate.js'
import { audienceOf } from '../../src/tokens/audience.js'
import { logExchange } from '../../src/tokens/exchange-log.js'
import { exchangeOutcome } from '../../src/tokens/exchange-outcome.js'
import { route } from '../helpers/gateway.js'
import { discoveredClient, metadata, tokenAnswer } from '../helpers/mock-idp.js'

t.test(
  'an exchange whose DPoP proof the IdP refuses: outcome dpop_proof_refused, and the line says so',
  async (t) => {
    const { idp, oidc } = await discoveredClient(t, {
      oidc: { dpop: true },
      metadata: metadata({ dpop_signing_alg_values_supported: ['ES256'] }),
    })
    const audience = audienceOf({
      ...route('/x', 'http://x:1'),
      token: 'exchange',
      dpop: true,
      exchange: {
        subjectToken: 'access_token',
        audience: 'ledger',
        scopes: [],
        requestedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
        grant: 'token-exchange',
      },
    } as never)!
    void tokenAnswer(idp, 400, {
      error: 'invalid_dpop_proof',
      error_description: 'DPoP proof iat is not recent enough',
    })
    const err = await oidc
      .exchange('subject-token-0123456789', audience, await generateDpopKey('ES256'))
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    t.match(err, { code: 'GATEHOUSE_ERR_DPOP_PROOF_REFUSED' }, 'the request gets 503 dpop_proof_refused')
    const outcome = exchangeOutcome(err)
    t.equal(outcome, 'dpop_proof_refused', 'counted as what it was')
    const lines: Record<string, unknown>[] = []
    const log = Object.fromEntries(
      ['info', 'warn'].map((level) => [
        level,
        (fields: object, msg: string) => lines.push({ level, ...fields, msg }),
      ]),
    ) as never
    logExchange(log, { outcome, ms: 5, sessionId: 's', audience: 'ledger', failure: idpFailureOf(err) })
    t.match(lines, [
      {
        level: 'warn',
        code: 'GATEHOUSE_ERR_DPOP_PROOF_REFUSED',
        oauthError: 'invalid_dpop_proof',
        msg: "token exchange failed: the identity provider refused the gateway's DPoP proof; the session stays",
      },
    ])
  },
)
