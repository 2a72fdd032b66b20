import { calculateJwkThumbprint } from 'jose'
import type { KoaContextWithOIDC } from 'oidc-provider'
import t, { type Test } from 'tap'
import { generateDpopKey } from '../../src/dpop/keys.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { boundTo } from '../helpers/dpop.js'
import { route } from '../helpers/gateway.js'
import { followLoginFlow } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

/**
 * RFC 9449 §10: the authorization code is bound to the session's DPoP key
 * when the login starts, so a code that leaks (a log, a referrer, a
 * malicious app on the redirect) cannot be redeemed with an attacker's key.
 * oidc-provider records the binding from the PAR request's proof (§10.1)
 * or from `dpop_jkt`, and refuses a token request whose proof's key differs.
 */
async function dpopStack(t: Test, par: boolean) {
  const stack = await startStack(t, {
    idp: { par, dpopNonce: true },
    client: { dpopBoundAccessTokens: true, ...(par ? { requirePushedAuthorizationRequests: true } : {}) },
    config: { oidc: { dpop: true } },
    routes: (upstream) => [route('/api/orders', upstream)],
  })
  return { stack, oidc: stack.gateway.app.gatehouse.oidc }
}

for (const par of [true, false]) {
  const how = par ? 'through PAR (a proof with the pushed request)' : 'without PAR (dpop_jkt in the URL)'

  t.test(`${how}: the code is bound to the login's key, and redeemed with it`, async (t) => {
    const { stack, oidc } = await dpopStack(t, par)
    const { url, state } = await oidc.authorizationUrl('/')
    t.ok(state.dpopKey, 'the key is made when the login starts, kept in the sealed login state')
    const jkt = await calculateJwkThumbprint({ ...state.dpopKey!.jwk })
    if (par) {
      t.same([...url.searchParams.keys()].sort(), ['client_id', 'request_uri'])
      const id = url.searchParams.get('request_uri')!.split(':').at(-1)!
      const pushed = await stack.idp.provider.PushedAuthorizationRequest.find(id)
      t.equal((pushed as unknown as { dpopJkt?: string })?.dpopJkt, jkt, 'the IdP bound the request to it')
    } else {
      t.equal(url.searchParams.get('dpop_jkt'), jkt, 'RFC 9449 §10: dpop_jkt names the key')
    }
    const callbackUrl = await followLoginFlow(new CookieJar(), url.href, 'ines')
    const result = await oidc.callback(new URL(callbackUrl), state)
    t.same(result.dpopKey, state.dpopKey, 'the session keeps the key the code was bound to')
    t.equal(await boundTo(stack.idp, result.tokens.accessToken), jkt, 'and its tokens are bound to it')
  })

  t.test(`${how}: a code redeemed with another key is refused by the IdP`, async (t) => {
    const { stack, oidc } = await dpopStack(t, par)
    const { url, state } = await oidc.authorizationUrl('/')
    const callbackUrl = await followLoginFlow(new CookieJar(), url.href, 'jo')
    const refusals: string[] = []
    stack.idp.provider.on('grant.error', (_ctx: KoaContextWithOIDC, err: Error) => {
      refusals.push(String((err as Error & { error_detail?: string }).error_detail))
    })
    // What a thief holding the code (and, at worst, the PKCE verifier) could do with a key of their own.
    const stolen = { ...state, dpopKey: await generateDpopKey('ES256') }
    await t.rejects(oidc.callback(new URL(callbackUrl), stolen), {
      code: 'GATEHOUSE_ERR_LOGIN_FAILED',
    })
    t.equal(stack.idp.stats.authorizationCodeGrants, 0, 'no tokens were issued')
    t.match(refusals.at(-1), /does not match dpop_jkt/, 'refused for the key, not for anything else')
  })
}
