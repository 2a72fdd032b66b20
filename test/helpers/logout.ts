import { type CryptoKey, exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose'
import type { Test } from 'tap'
import type { DevIdp } from '../../dev/idp.js'
import { CookieJar } from './cookie-jar.js'
import { CLIENT_ID, route, type TestConfigInput } from './gateway.js'
import { apiCall, jarFetch, login } from './login.js'
import { startStack } from './stack.js'

/** OpenID Connect Back-Channel Logout 1.0 §2.4: the event a logout token carries. */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout'

/** The line a held logout token logs as it is carried out (`GATEHOUSE_BACKCHANNEL_LOGOUT_UNVERIFIED` in docs/errors.md). */
export const HELD_LOGOUT_CARRIED_OUT = "back-channel logout carried out once the issuer's keys could be read"

export interface LogoutTokenSigner {
  readonly issuer: string
  /** One client id, or several (§2.4: `aud` as in an ID token, OIDC Core §2). */
  readonly audience: string | readonly string[]
  /** The IdP's signing key, and its `kid` in the JWKS the gateway fetches. */
  readonly key: CryptoKey
  readonly kid: string
}

/**
 * A logout token as an IdP signs one (§2.4): the event, a fresh `jti` and
 * `iat`, then `claims` (a `sub`, a `sid`, or a deliberate mistake), which
 * may override any of them.
 */
export function signLogoutToken(signer: LogoutTokenSigner, claims: JWTPayload): Promise<string> {
  return new SignJWT({
    events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
    jti: crypto.randomUUID(),
    iat: Math.floor(Date.now() / 1000),
    ...claims,
  })
    .setProtectedHeader({ alg: 'RS256', typ: 'logout+jwt', kid: signer.kid })
    .setIssuer(signer.issuer)
    .setAudience(typeof signer.audience === 'string' ? signer.audience : [...signer.audience])
    .sign(signer.key)
}

/** Delivers a logout token as an IdP does (§2.5): a form POST to the gateway's shared back-channel path. */
export function postLogoutToken(base: string, token: string) {
  return jarFetch(new CookieJar(), `${base}/auth/backchannel-logout`, {
    method: 'POST',
    body: new URLSearchParams({ logout_token: token }),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  })
}

/**
 * Has `idp`'s JWKS answer every fetch 503 (`Retry-After: 1`), counting the
 * fetches as they come, so a test can wait for the gateway's nth try.
 */
export function jwksDownCounted(idp: DevIdp) {
  let count = 0
  const waiting = new Map<number, () => void>()
  idp.answer('jwks', {
    status: 503,
    headers: { 'retry-after': '1' },
    body: () => {
      count++
      waiting.get(count)?.()
      return 'unavailable'
    },
  })
  return {
    get count() {
      return count
    },
    /** Resolves once the JWKS has been fetched `n` times. */
    fetched: (n: number) =>
      new Promise<void>((resolve) => (count >= n ? resolve() : waiting.set(n, resolve))),
  }
}

/**
 * Ends the user's session at oidc-provider itself, as its own logout page
 * would when the user confirms it: the IdP then sends its logout tokens.
 */
export async function endIdpSession(jar: CookieJar, issuer: string) {
  const page = await jarFetch(jar, `${issuer}/session/end`)
  const action = /<form[^>]*action="([^"]+)"/.exec(page.text)?.[1]
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(page.text)?.[1]
  if (!action || !xsrf) throw new Error(`no logout form at the IdP (HTTP ${page.status})`)
  return jarFetch(jar, new URL(action, issuer).href, {
    method: 'POST',
    body: new URLSearchParams({ xsrf, logout: 'yes' }),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  })
}

/**
 * A stack with back-channel logout, two sessions of dave, and a poster of
 * one logout token for him (each post a delivery of the same token);
 * `ended` says whether both sessions are over.
 */
export async function twoSessionsOfDave(t: Test, config: Partial<TestConfigInput> = {}) {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const jwk = { ...(await exportJWK(privateKey)), kid: 'idp-key', alg: 'RS256', use: 'sig' }
  const stack = await startStack(t, {
    idp: { signingKey: jwk },
    backchannelLogout: true,
    routes: (upstream) => [route('/api/orders', upstream)],
    config: { logLevel: 'silent', ...config },
  })
  const base = stack.gateway.url
  const store = stack.gateway.app.gatehouse.stores.sessions
  const one = await login(base, { user: 'dave' })
  const two = await login(base, { user: 'dave' })
  t.equal((await store.idsBySub('dave')).length, 2)

  const token = await signLogoutToken(
    { issuer: stack.idp.issuer, audience: CLIENT_ID, key: privateKey, kid: 'idp-key' },
    { sub: 'dave' },
  )
  const post = () => postLogoutToken(base, token)
  const ended = async () =>
    [
      (await apiCall(one.jar, `${base}/api/orders`)).status,
      (await apiCall(two.jar, `${base}/api/orders`)).status,
    ].every((status) => status === 401)
  return { base, store, post, ended }
}
