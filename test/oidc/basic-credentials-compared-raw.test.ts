/**
 * Quirk: an OP that compares Basic credentials without undoing their
 * form-encoding (RFC 6749 §2.3.1 says to decode them; many do not). With
 * the WHATWG encoding a secret of [A-Za-z0-9*-._] reaches it unchanged and
 * works with the default client_secret_basic; a secret with other
 * characters cannot, and the operator is told why and what to do.
 */
import t from 'tap'
import { CLIENT_SECRET } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'

const raw = { quirks: { rawBasicCredentials: true } } as const

t.test(
  'the default client_secret_basic with a secret such as my-bff-secret: login, refresh, client credentials, logout',
  async (t) => {
    t.match(CLIENT_SECRET, /-/, 'the test secret has a character oauth4webapi would escape')
    const stack = await startObservedStack(t, { idp: raw })
    const base = stack.gateway.url
    const { callback, jar } = await login(base)
    t.equal(callback.status, 302, 'signed in')
    stack.clock.advance(61_000)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'refreshed')
    t.equal((await apiCall(jar, `${base}/api/reports`)).status, 200, 'client credentials')
    const user = (await apiCall(jar, `${base}/auth/user`)).json<{ logoutUrl: string }>()
    t.equal((await jarFetch(jar, `${base}${user.logoutUrl}`)).status, 200, 'the page that posts the logout')
    t.equal(stack.idp.stats.revocations, 1, 'revoked, authenticated the same way')
    t.equal(stack.idp.stats.grantErrors, 0)
    t.notOk(
      stack.lines.some((l) => l.level >= 50),
      'no error line',
    )
  },
)

t.test(
  'a secret with characters that must be escaped: refused, with a hint naming the encoding and the way out',
  async (t) => {
    const secret = 'tilde~secret!with(more)characters'
    const stack = await startObservedStack(t, {
      idp: raw,
      client: { clientSecret: secret },
      config: { oidc: { clientSecret: secret } },
    })
    const { callback } = await login(stack.gateway.url)
    t.equal(callback.status, 500)
    t.match(callback.text, /Sign-in is misconfigured/)
    const line = stack.lines.find((l) => l.code === 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED')
    t.match(line, {
      level: 50,
      operation: 'code_exchange',
      hint: /Basic encoding.*compares credentials without decoding.*clientAuth: client_secret_post.*check --online/,
    })
    t.notOk(JSON.stringify(stack.lines).includes(secret), 'never the secret')

    const post = await startObservedStack(t, {
      idp: raw,
      client: { clientSecret: secret },
      config: { oidc: { clientSecret: secret, clientAuth: 'client_secret_post' } },
    })
    t.equal(
      (await login(post.gateway.url)).callback.status,
      302,
      'client_secret_post, as the hint says, works',
    )
  },
)
