import type { KoaContextWithOIDC } from 'oidc-provider'
import t from 'tap'
import type { DpopKey } from '../../src/types.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { jarFetch, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

/**
 * With `oidc.dpop` and PAR, every sign-in start makes a key and sends a
 * proof of it with the pushed request (RFC 9449 §10.1). That request is
 * the key's only use until its callback, which an anonymous visitor never
 * reaches: a handle kept ready for it took a place among the 10,000 the
 * process keeps (src/dpop/key-cache.ts), about 5 KiB of heap each, so
 * anyone starting sign-ins from enough addresses filled the cache and
 * pushed out the signers of the signed-in sessions, each of which then
 * paid a key import on its next request.
 */
t.test('a sign-in start keeps no DPoP key ready once its pushed request is sent', async (t) => {
  const stack = await startStack(t, {
    idp: { par: true, dpopNonce: true },
    client: { dpopBoundAccessTokens: true, requirePushedAuthorizationRequests: true },
    config: { oidc: { dpop: true } },
    routes: (upstream) => [route('/api/orders', upstream)],
  })
  // The public key of each pushed request's proof (RFC 9449 §4.2, its `jwk` header).
  const pushedKeys: DpopKey[] = []
  stack.idp.provider.on('pushed_authorization_request.success', (ctx: KoaContextWithOIDC) => {
    const header = JSON.parse(Buffer.from(ctx.get('dpop').split('.')[0]!, 'base64url').toString())
    pushedKeys.push({ alg: header.alg, jwk: header.jwk })
  })
  const keys = stack.gateway.app.gatehouse.lasting.dpopKeys
  const starts = 40
  const answers = await Promise.all(
    Array.from({ length: starts }, (_, i) =>
      jarFetch(new CookieJar(), `${stack.gateway.url}/auth/login?returnTo=/${i}`),
    ),
  )
  t.same(
    answers.map((a) => a.status),
    Array(starts).fill(302),
    'every start is sent on to the IdP',
  )
  const distinct = new Set(pushedKeys.map((k) => k.jwk.x))
  t.ok(distinct.size >= starts, `each start pushed a proof of a key of its own (${distinct.size})`)
  const held = pushedKeys.filter((key) => keys.holds(key)).length
  t.equal(held, 0, 'no sign-in start leaves its key in the DPoP caches')

  // The sign-in still completes with its key, which its session then keeps ready.
  const { jar } = await login(stack.gateway.url)
  const res = await jarFetch(jar, `${stack.gateway.url}/api/orders`, { headers: { 'x-csrf': '1' } })
  t.equal(res.status, 200, 'a signed-in call on the DPoP-bound session goes through')
})

t.test('a callback whose code is refused keeps no DPoP key ready', async (t) => {
  const stack = await startStack(t, {
    idp: { dpopNonce: true },
    client: { dpopBoundAccessTokens: true },
    config: { oidc: { dpop: true } },
    routes: (upstream) => [route('/api/orders', upstream)],
  })
  // The public key of each token request's proof, the nonce challenges' included.
  const provedKeys: DpopKey[] = []
  stack.idp.provider.on('grant.error', (ctx: KoaContextWithOIDC) => {
    const header = JSON.parse(Buffer.from(ctx.get('dpop').split('.')[0]!, 'base64url').toString())
    provedKeys.push({ alg: header.alg, jwk: header.jwk })
  })
  const keys = stack.gateway.app.gatehouse.lasting.dpopKeys
  const callbacks = 20
  // Anyone can start a sign-in and bring its own state back with a code of their making.
  const answers = await Promise.all(
    Array.from({ length: callbacks }, async (_, i) => {
      const jar = new CookieJar()
      const start = await jarFetch(jar, `${stack.gateway.url}/auth/login?returnTo=/${i}`)
      const state = new URL(start.location!).searchParams.get('state')
      const callback = new URL(`${stack.gateway.url}/auth/callback`)
      callback.search = new URLSearchParams({
        code: `made-up-${i}`,
        state: state!,
        iss: stack.idp.issuer,
      }).toString()
      return (await jarFetch(jar, callback.href)).status
    }),
  )
  t.same(answers, Array(callbacks).fill(400), 'each made-up code is refused: the login_failed page')
  const distinct = new Set(provedKeys.map((k) => k.jwk.x))
  t.equal(distinct.size, callbacks, 'each was redeemed with a proof of its own key')
  const held = provedKeys.filter((key) => keys.holds(key)).length
  t.equal(held, 0, 'no refused callback leaves its key in the DPoP caches')
})
