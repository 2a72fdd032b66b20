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

/**
 * Walks the dev IdP's login: from an authorization URL, through its login
 * form, to the first redirect that leaves the IdP (the client's callback
 * with a code). Returns that URL.
 */
export async function followLoginFlow(
  jar: CookieJar,
  authorizationUrl: string,
  user: string,
): Promise<string> {
  const idpOrigin = new URL(authorizationUrl).origin
  let url = authorizationUrl
  let submitted = false
  for (let hop = 0; hop < 20; hop++) {
    const response = await jarFetch(jar, url)
    if (response.location) {
      if (new URL(response.location).origin !== idpOrigin) return response.location
      url = response.location
      continue
    }
    if (response.status !== 200 || submitted) {
      throw new Error(`login flow stuck at ${new URL(url).pathname}: HTTP ${response.status}`)
    }
    const action = /<form[^>]*action="([^"]+)"/.exec(response.text)?.[1]
    if (!action) throw new Error(`no login form at ${new URL(url).pathname}`)
    const form = new URLSearchParams({ prompt: 'login', login: user, password: 'any' })
    const posted = await jarFetch(jar, new URL(action, url).href, {
      method: 'POST',
      body: form,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
    if (!posted.location) throw new Error(`login form post answered HTTP ${posted.status}`)
    submitted = true
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
}

/** Logs a user in at a gateway: `/auth/login` → IdP form → `/auth/callback`. */
export async function login(
  gatewayUrl: string,
  {
    user = 'alice',
    returnTo = '/',
    jar = new CookieJar(),
  }: { user?: string; returnTo?: string; jar?: CookieJar } = {},
): Promise<LoginResult> {
  const start = await jarFetch(jar, `${gatewayUrl}/auth/login?returnTo=${encodeURIComponent(returnTo)}`)
  if (start.status !== 302 || !start.location) throw new Error(`/auth/login answered HTTP ${start.status}`)
  const callbackUrl = await followLoginFlow(jar, start.location, user)
  const callback = await jarFetch(jar, callbackUrl)
  return { jar, callback, callbackUrl }
}

/** A same-origin API call as the SPA makes it. */
export function apiCall(jar: CookieJar, url: string, init: RequestInit = {}): Promise<JarResponse> {
  const headers = new Headers(init.headers)
  if (!headers.has('x-csrf')) headers.set('x-csrf', '1')
  return jarFetch(jar, url, { ...init, headers })
}
