/**
 * An upstream's 401 `DPoP error="invalid_dpop_proof"` (RFC 9449 §7.1) to a
 * WebSocket upgrade refuses the gateway's proof, as it does to an API call
 * (`test/proxy/upstream-refusing-the-proof-never-sends-the-browser-to-sign-in.test.ts`).
 * An API call got `502 upstream_dpop_proof_refused` and a warning naming
 * the route and what the proof named; the upgrade got the generic `502
 * upstream_upgrade_refused` and a line that said only "refused", so an
 * operator whose upstream read the URL as `https://` behind a TLS
 * terminator had sockets failing with nothing pointing at the proof.
 */
import t from 'tap'
import type { DevIdp } from '../../../dev/idp.js'
import { boundTo } from '../../helpers/dpop.js'
import { DpopVerifier } from '../../helpers/dpop-resource-server.js'
import { route } from '../../helpers/gateway.js'
import { apiCall, login } from '../../helpers/login.js'
import { startObservedStack } from '../../helpers/observed-stack.js'
import { browserHeaders, openSocket, type Refused, wsUpstream, wsUrl } from '../../helpers/websocket.js'

t.test(
  "an upgrade whose proof the upstream refuses is 502 upstream_dpop_proof_refused with the HTTP path's warning; one without a proof is upstream_upgrade_refused",
  async (t) => {
    let idp: DevIdp | undefined
    const verifier = new DpopVerifier((token) => boundTo(idp!, token))
    /** The scheme the upstream reads its own URL with: `https` is a TLS terminator's upstream that forgot it sits behind one. */
    let scheme = 'http'
    let dials = 0
    const ws = await wsUpstream(t, {
      verifyClient: (info, answer) => {
        dials++
        const { req } = info
        const url = `${scheme}://${req.headers.host}${req.url}`
        verifier.verify({ method: req.method ?? '', url, headers: req.headers }).then((verdict) => {
          if (verdict.ok) return answer(true)
          // A server may echo what it refused: the gateway must not log it.
          const echoed = `${req.headers.authorization} ${req.headers.dpop}`
          answer(false, 401, 'Unauthorized', {
            'WWW-Authenticate': `DPoP error="invalid_dpop_proof", error_description="${verdict.reason}: ${echoed}"`,
          })
        })
      },
    })
    const stack = await startObservedStack(t, {
      config: { oidc: { dpop: true } },
      routes: () => [
        route('/api/live', ws.url, { websocket: true }),
        route('/api/plain-live', ws.url, { websocket: true, dpop: false, scopes: ['openid'] }),
      ],
    })
    idp = stack.idp
    const { jar } = await login(stack.gateway.url)
    const open = (path: string) =>
      openSocket(wsUrl(stack, path), browserHeaders(stack, jar)).then(
        (socket) => {
          socket.terminate()
          return undefined
        },
        (err: Refused) => err,
      )

    t.equal(
      await open('/api/live/feed'),
      undefined,
      "the verifier takes the gateway's proof for the URL it read",
    )
    t.equal(dials, 1)

    scheme = 'https'
    for (let i = 0; i < 2; i++) {
      const refused = await open('/api/live/feed?page=2')
      t.equal(refused?.status, 502, refused?.body ?? 'opened')
      t.match(JSON.parse(refused?.body ?? '{}'), { error: 'upstream_dpop_proof_refused' })
      t.equal(
        refused?.headers['www-authenticate'],
        undefined,
        "the upstream's challenge is not the browser's",
      )
    }
    t.equal(dials, 3, 'a refused proof is not dialled again')
    const warnings = stack.lines.filter((l) => l.level >= 40)
    t.match(warnings, [
      {
        code: 'GATEHOUSE_ERR_UPSTREAM_DPOP_PROOF_REFUSED',
        route: '/api/live',
        htm: 'GET',
        htu: `${ws.url}/api/live/feed`,
        msg: /invalid_dpop_proof/,
      },
    ])
    t.equal(warnings.length, 1, 'one line a minute per route, and no second line for the same refusal')
    const sent = ws.upgrades[0]!
    const logged = JSON.stringify(stack.lines)
    t.notOk(logged.includes(sent.authorization!.slice('DPoP '.length)), 'no line quotes the token')
    t.notOk(logged.includes((sent.dpop as string).split('.')[1]!), 'nor a proof')
    t.equal((await apiCall(jar, `${stack.gateway.url}/auth/user`)).status, 200, 'the session stays')

    const plain = await open('/api/plain-live/feed')
    t.equal(plain?.status, 502, 'an upgrade that carried no proof: the refusal was not of a proof of ours')
    t.match(JSON.parse(plain?.body ?? '{}'), { error: 'upstream_upgrade_refused' })
  },
)
