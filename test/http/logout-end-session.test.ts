import t, { type Test } from 'tap'
import type { CookieJar } from '../helpers/cookie-jar.js'
import type { TestConfigInput } from '../helpers/gateway.js'
import { apiCall, jarFetch, login, parseForm } from '../helpers/login.js'
import { type Stack, startStack } from '../helpers/stack.js'

/** A signed-in user and the answer to following their logout link. */
async function logout(t: Test, config: Partial<TestConfigInput> = {}) {
  const stack: Stack = await startStack(t, { config, idp: { endSessionPost: true } })
  const base = stack.gateway.url
  const { jar } = await login(base)
  const { logoutUrl } = (await apiCall(jar, `${base}/auth/user`)).json<{ logoutUrl: string }>()
  const answer = await jarFetch(jar, `${base}${logoutUrl}`)
  return { stack, base, jar, answer }
}

/**
 * Follows the dev IdP's end-session pages as a browser would: its
 * confirmation form, then the redirect back. Returns where it sent the
 * browser, or throws on an error page.
 */
async function finishAtIdp(
  jar: CookieJar,
  first: { status: number; text: string; location?: string | undefined },
  url: string,
) {
  let response = first
  let at = url
  for (let hop = 0; hop < 5; hop++) {
    if (response.location) return response.location
    if (response.status !== 200)
      throw new Error(`the IdP answered ${response.status}: ${response.text.slice(0, 200)}`)
    const { action, fields } = parseForm(response.text, at)
    // oidc-provider's confirmation: "yes, sign me out".
    fields.set('logout', 'yes')
    at = action
    response = await jarFetch(jar, action, {
      method: 'POST',
      body: fields,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
  }
  throw new Error('too many hops at the IdP')
}

t.test('logout posts the ID token to the IdP from a page; it is never in a URL', async (t) => {
  const { stack, base, jar, answer } = await logout(t)
  t.equal(answer.status, 200)
  t.equal(answer.location, undefined, 'no redirect: nothing to put in a URL')
  t.match(answer.headers.get('content-type'), /^text\/html/)
  const csp = answer.headers.get('content-security-policy') ?? ''
  const idp = new URL(stack.idp.issuer).origin
  t.match(csp, /default-src 'none'/)
  t.match(csp, /script-src 'sha256-[A-Za-z0-9+/]+=*'(;|$)/, 'one hashed script and nothing else')
  t.match(
    csp,
    new RegExp(`form-action ${idp} ${base}(;|$)`),
    'the form may go to the IdP, and come back here',
  )
  t.match(csp, /frame-ancestors 'none'/)
  t.equal(
    answer.headers.get('referrer-policy'),
    'strict-origin',
    'the IdP learns the origin, not the logout URL',
  )
  t.equal(answer.headers.get('cache-control'), 'no-store')
  t.match(answer.text, /<button type="submit">/, 'a button for when script is blocked')

  const { action, fields } = parseForm(answer.text, base)
  const endpoint = new URL(action)
  t.equal(endpoint.origin, idp)
  t.equal(endpoint.search, '', 'the endpoint carries no parameters')
  t.same([...fields.keys()].sort(), ['client_id', 'id_token_hint', 'post_logout_redirect_uri'])
  t.match(answer.text, /<form method="post"/)

  // The real IdP takes the POST (RP-Initiated Logout 1.0 §2), validates the
  // hint, confirms, and sends the browser back to the registered URI.
  const posted = await jarFetch(jar, action, {
    method: 'POST',
    body: fields,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  })
  t.equal(await finishAtIdp(jar, posted, action), `${base}/`, 'back at the post-logout URI')
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 401)
  const again = await jarFetch(jar, `${base}/auth/login`)
  const atIdp = await jarFetch(jar, again.location!)
  const prompt = atIdp.location ? await jarFetch(jar, atIdp.location) : atIdp
  t.match(prompt.text, /name="login"/, 'the IdP session ended: the next login asks for credentials')
})

t.test('endSession: client-id redirects with client_id and no ID token', async (t) => {
  const { stack, base, jar, answer } = await logout(t, { endSession: 'client-id' })
  t.equal(answer.status, 302)
  const target = new URL(answer.location!)
  t.equal(target.origin, new URL(stack.idp.issuer).origin)
  t.equal(target.searchParams.get('id_token_hint'), null, 'no ID token in the URL')
  t.equal(target.searchParams.get('client_id'), 'gatehouse-test')
  t.equal(target.searchParams.get('post_logout_redirect_uri'), `${base}/`)
  const page = await jarFetch(jar, answer.location!)
  t.equal(await finishAtIdp(jar, page, answer.location!), `${base}/`, 'the IdP takes client_id alone')
})

t.test('endSession: get keeps the old redirect with the ID token in its URL', async (t) => {
  const { base, answer } = await logout(t, { endSession: 'get' })
  t.equal(answer.status, 302)
  const target = new URL(answer.location!)
  t.ok(target.searchParams.get('id_token_hint'))
  t.equal(target.searchParams.get('post_logout_redirect_uri'), `${base}/`)
})
