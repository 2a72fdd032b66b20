import { CookieJar } from './cookie-jar.js'

export interface JarResponse {
  readonly status: number
  readonly headers: Headers
  readonly location: string | undefined
  readonly text: string
  json<T = Record<string, unknown>>(): T
}

/** fetch with the jar's cookies, storing what comes back, never following redirects. */
export async function jarFetch(jar: CookieJar, url: string, init: RequestInit = {}): Promise<JarResponse> {
  const headers = new Headers(init.headers)
  const cookie = jar.header(url)
  if (cookie) headers.set('cookie', cookie)
  const response = await fetch(url, { ...init, headers, redirect: 'manual' })
  jar.store(url, response.headers.getSetCookie())
  const text = await response.text()
  const location = response.headers.get('location') ?? undefined
  return {
    status: response.status,
    headers: response.headers,
    location: location ? new URL(location, url).href : undefined,
    text,
    json: <T>() => JSON.parse(text) as T,
  }
}

/** The dev IdP's login form as a browser would submit it: its action and every named field. */
export function parseForm(html: string, baseUrl: string): { action: string; fields: URLSearchParams } {
  const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html)
  if (!form) throw new Error('no form in the page')
  const attribute = (tag: string, name: string) =>
    new RegExp(`(?:^|\\s)${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)')`, 'i')
      .exec(tag)
      ?.slice(1)
      .find((v) => v !== undefined)
  const action = new URL(decodeEntities(attribute(form[1]!, 'action') ?? ''), baseUrl).href
  const fields = new URLSearchParams()
  for (const [input] of form[2]!.matchAll(/<(?:input|button)\b[^>]*>/gi)) {
    const name = attribute(input, 'name')
    if (name) fields.set(decodeEntities(name), decodeEntities(attribute(input, 'value') ?? ''))
  }
  return { action, fields }
}

function decodeEntities(text: string): string {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&#x27;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
}

/**
 * Walks the dev IdP's login: from an authorization URL, through its login
 * form and, on a strict IdP, its consent page (the user consents), to the
 * first redirect that leaves the IdP (the client's callback with a code, or
 * an error). Returns that URL. Pass `responses` to collect every hop.
 */
export async function followLoginFlow(
  jar: CookieJar,
  authorizationUrl: string,
  user: string,
  responses: JarResponse[] = [],
): Promise<string> {
  const idpOrigin = new URL(authorizationUrl).origin
  let url = authorizationUrl
  let forms = 0
  for (let hop = 0; hop < 20; hop++) {
    const response = await jarFetch(jar, url)
    responses.push(response)
    if (response.location) {
      if (new URL(response.location).origin !== idpOrigin) return response.location
      url = response.location
      continue
    }
    // Two forms at most: sign in, then consent.
    if (response.status !== 200 || forms === 2) {
      throw new Error(`login flow stuck at ${new URL(url).pathname}: HTTP ${response.status}`)
    }
    const { action, fields } = parseForm(response.text, url)
    // oidc-provider's devInteractions: any login, any password; its consent
    // form needs no input, submitting it is the user's "allow".
    if (fields.get('prompt') === 'login') {
      fields.set('login', user)
      fields.set('password', 'any')
    }
    const posted = await jarFetch(jar, action, {
      method: 'POST',
      body: fields,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
    responses.push(posted)
    if (!posted.location) throw new Error(`${fields.get('prompt')} form post answered HTTP ${posted.status}`)
    forms++
    url = posted.location
  }
  throw new Error('too many redirects in the login flow')
}

export interface LoginResult {
  readonly jar: CookieJar
  /** The gateway's answer to the callback. */
  readonly callback: JarResponse
  /** The callback URL the IdP sent the browser to, code and state included. */
  readonly callbackUrl: string
  /** Where the gateway sent the browser after the callback: returnTo, when all went well. */
  readonly finalLocation: string | undefined
  /** Every response on the way, in order, the callback's last. */
  readonly responses: readonly JarResponse[]
}

/** Logs a user in at a gateway: `/auth/login` → IdP form → `/auth/callback`. */
export async function login(
  gatewayUrl: string,
  {
    user = 'alice',
    returnTo = '/',
    jar = new CookieJar(),
    params = {},
  }: {
    user?: string
    returnTo?: string
    jar?: CookieJar
    /** More `/auth/login` query parameters, such as `prompt` or `login_hint`. */
    params?: Readonly<Record<string, string>>
  } = {},
): Promise<LoginResult> {
  const query = new URLSearchParams({ returnTo, ...params })
  const start = await jarFetch(jar, `${gatewayUrl}/auth/login?${query}`)
  if (start.status !== 302 || !start.location) throw new Error(`/auth/login answered HTTP ${start.status}`)
  const responses = [start]
  const callbackUrl = await followLoginFlow(jar, start.location, user, responses)
  const callback = await jarFetch(jar, callbackUrl)
  responses.push(callback)
  return { jar, callback, callbackUrl, finalLocation: callback.location, responses }
}

/** A same-origin API call as the SPA makes it. */
export function apiCall(jar: CookieJar, url: string, init: RequestInit = {}): Promise<JarResponse> {
  const headers = new Headers(init.headers)
  if (!headers.has('x-csrf')) headers.set('x-csrf', '1')
  return jarFetch(jar, url, { ...init, headers })
}

/**
 * Follows the session's own logout link, as its SPA's button does; the
 * page that posts to the IdP's end-session endpoint is not submitted.
 */
export async function followLogoutLink(
  jar: CookieJar,
  base: string,
  basePath = '/auth',
): Promise<JarResponse> {
  const { logoutUrl } = (await apiCall(jar, `${base}${basePath}/user`)).json<{ logoutUrl: string }>()
  return jarFetch(jar, `${base}${logoutUrl}`)
}
