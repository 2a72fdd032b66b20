/**
 * RFC 9449 §9: a `use_dpop_nonce` challenge asks the DPoP client for a
 * nonce to put in its proof. An upgrade that went without a proof (no
 * session on an `optional-user` route, or a session signed in without
 * DPoP) has no proof to put one in: an HTTP request on the same route
 * passes such a 401 as it came (token-retry.ts, `proofSent`), but an
 * upgrade was dialled once more, again without a proof, so an upstream
 * that challenges every upgrade was dialled twice for each one a browser
 * with no session sent. And the nonces of answers to upgrades without a
 * proof were remembered as the proofs' own.
 */
import { decodeJwt } from 'jose'
import t from 'tap'
import { route } from '../../helpers/gateway.js'
import { login } from '../../helpers/login.js'
import { startStack } from '../../helpers/stack.js'
import { browserHeaders, openSocket, type Refused, wsUpstream, wsUrl } from '../../helpers/websocket.js'

t.test('an upgrade without a proof is not dialled again for a nonce; one with a proof is', async (t) => {
  let dials = 0
  const ws = await wsUpstream(t, {
    verifyClient: (info, answer) => {
      dials++
      const proof = info.req.headers.dpop
      if (typeof proof === 'string' && decodeJwt(proof).nonce === 'upstream-nonce') return answer(true)
      answer(false, 401, 'Unauthorized', {
        'WWW-Authenticate': 'DPoP error="use_dpop_nonce"',
        'DPoP-Nonce': 'upstream-nonce',
      })
    },
  })
  const stack = await startStack(t, {
    config: { oidc: { dpop: true } },
    routes: () => [route('/api/live', ws.url, { websocket: true, token: 'optional-user' })],
  })
  const open = (headers: Record<string, string>) =>
    openSocket(wsUrl(stack, '/api/live/feed'), headers).then(
      (socket) => {
        socket.terminate()
        return undefined
      },
      (err: Refused) => err,
    )

  const anonymous = await open(browserHeaders(stack))
  t.equal(anonymous?.status, 502, 'the refusal is the answer')
  t.equal(dials, 1, 'dialled once: there was no proof to put the nonce in')

  const { jar } = await login(stack.gateway.url)
  t.equal(await open(browserHeaders(stack, jar)), undefined, 'a session with a key opens')
  t.equal(dials, 3, 'its upgrade was challenged and dialled again with the nonce')
})
