/**
 * The nonce a DPoP upstream gave (RFC 9449 §9) was remembered by the
 * routes of one config: every reload, a route added or a provider's scopes
 * changed, built routes that knew none. A request with a body the gateway
 * cannot replay (streamed, or past 64 KiB) was then sent without it, and
 * the upstream's `use_dpop_nonce` came back to the browser as 503
 * `upstream_dpop_nonce`: an upload lost at each reload, for each upstream.
 * The nonces are the upstreams', not a config's, and now outlive it.
 */
import t from 'tap'
import type { DevIdp } from '../../dev/idp.js'
import { boundTo } from '../helpers/dpop.js'
import { DpopVerifier, startDpopUpstream } from '../helpers/dpop-resource-server.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { configText, startReloadable } from '../helpers/reloadable.js'

const UPLOAD = { method: 'POST', body: 'x'.repeat(64 * 1024 + 1), headers: { 'content-type': 'text/plain' } }

t.test(
  "an upload after a reload carries the nonce the upstream gave before it, so the upstream's challenge never reaches the browser",
  async (t) => {
    let idp: DevIdp | undefined
    const dpopUpstream = await startDpopUpstream(new DpopVerifier((token) => boundTo(idp!, token)))
    t.teardown(() => dpopUpstream.close())
    const s = await startReloadable(t, () => [route('/api/orders', dpopUpstream.url)], {
      watch: false,
      client: { dpopBoundAccessTokens: true },
      input: { oidc: { dpop: true } },
    })
    idp = s.idp
    const { jar } = await login(s.url)
    dpopUpstream.rotateNonce()
    t.equal(
      (await apiCall(jar, `${s.url}/api/orders`)).status,
      200,
      'a request the gateway replays with the nonce',
    )
    t.equal(dpopUpstream.challenges(), 1)

    for (const [what, input] of [
      ['a route added', { ...s.input, routes: [...s.input.routes, route('/api/more', dpopUpstream.url)] }],
      [
        "the provider's scopes changed",
        { ...s.input, oidc: { ...s.input.oidc, scopes: ['openid', 'profile'] } },
      ],
    ] as const) {
      s.configMap.write(configText(input))
      t.match(await s.running.reload(), { result: 'applied' }, what)
      const upload = await apiCall(jar, `${s.url}/api/orders`, UPLOAD)
      t.equal(upload.status, 200, `${what}: the upload is answered by the upstream`, { body: upload.text })
      t.equal(dpopUpstream.challenges(), 1, `${what}: with the nonce it gave, unasked`)
    }
  },
)
