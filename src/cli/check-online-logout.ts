import type * as oauth from 'oauth4webapi'
import type { GatehouseConfig } from '../config/types.js'
import { networkCause } from '../network-cause.js'
import type { Row } from './online-report.js'

/** An IPv4 or bracketed IPv6 host, which is a site of its own. */
const IP_HOST = /^(\d{1,3}(\.\d{1,3}){3}|\[.*\])$/

/**
 * Whether `a` and `b` are the same site (schemeful: scheme and
 * registrable domain). Without the Public Suffix List the registrable
 * domain is taken as the last two labels, so `a.example.co.uk` and
 * `b.other.co.uk` count as one site: a missed warning, never a false one.
 */
function sameSite(a: URL, b: URL): boolean {
  if (a.protocol !== b.protocol) return false
  if (a.hostname === b.hostname) return true
  if (IP_HOST.test(a.hostname) || IP_HOST.test(b.hostname)) return false
  const site = (host: string) => host.split('.').slice(-2).join('.')
  return site(a.hostname) === site(b.hostname)
}

/**
 * `auth.endSession: post` (the default) sends the browser to the
 * end-session endpoint by a form POST from the gateway's page. From
 * another site that request carries none of the IdP's `SameSite=Lax` or
 * `Strict` cookies (RFC 6265bis, SameSite), so an IdP that keeps its
 * session in one takes the user for signed out already: LemonLDAP::NG
 * 2.16 (Lax by default) redirects back at once and its session lives on,
 * the next sign-in needing no password. Nothing of it reaches the gateway,
 * so this is said here.
 */
export function crossSiteLogoutHints(
  config: GatehouseConfig,
  as: Readonly<oauth.AuthorizationServer>,
): string[] {
  if (config.auth.endSession !== 'post' || typeof as.end_session_endpoint !== 'string') return []
  let endpoint: URL
  try {
    endpoint = new URL(as.end_session_endpoint)
  } catch {
    return []
  }
  const crossSite = [...new Set(config.frontends.map((f) => f.publicUrl))].filter(
    (publicUrl) => !sameSite(new URL(publicUrl), endpoint),
  )
  if (crossSite.length === 0) return []
  return [
    `end_session_endpoint (${endpoint.origin}) is on another site than ${crossSite.join(', ')}: auth.endSession: post reaches it by a cross-site form POST, which carries no SameSite=Lax or Strict cookie of the IdP, so an IdP whose session cookie is one (LemonLDAP::NG's default) takes the user for signed out and keeps its session; use auth.endSession: get, or client-id where the IdP takes it.`,
  ]
}

/** Answers that say the end-session endpoint takes no POST: not there for that method, or the method refused. */
const NO_POST = new Set([404, 405])

/**
 * RP-Initiated Logout 1.0 §2 has the OP take GET and POST at its
 * end-session endpoint, yet some serve GET only: Glewlwyd 2.7 answers a
 * POST 404, as oidc-provider does without `enableHttpPostMethods`. Then
 * `auth.endSession: post` (the default) leaves the user on the IdP's error
 * page with its session alive, and nothing of it reaches the gateway. The
 * probe is a POST with `client_id` alone: no cookie of the IdP rides on
 * it, so there is no session for it to end.
 */
export async function probeEndSessionPost(
  config: GatehouseConfig,
  as: Readonly<oauth.AuthorizationServer>,
  http: { readonly fetch: (url: string, init: RequestInit) => Promise<Response>; readonly timeout: number },
): Promise<{ rows: Row[]; hints: string[] }> {
  if (config.auth.endSession !== 'post' || typeof as.end_session_endpoint !== 'string') {
    return { rows: [], hints: [] }
  }
  const row = (advertised: string, verdict: Row['verdict']): Row => ({
    capability: 'end-session by POST',
    need: 'auth.endSession: post',
    advertised,
    verdict,
  })
  let status: number
  try {
    const response = await http.fetch(as.end_session_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: config.oidc.clientId }).toString(),
      redirect: 'manual',
      signal: AbortSignal.timeout(http.timeout),
    })
    status = response.status
    await response.body?.cancel()
  } catch (err) {
    const cause = networkCause(err, { total: { ms: http.timeout, name: 'oidc.timeout' } })
    return { rows: [row(`not answered: ${cause ?? (err as Error).message}`, '-')], hints: [] }
  }
  if (!NO_POST.has(status)) return { rows: [row(`taken (HTTP ${status})`, 'ok')], hints: [] }
  return {
    rows: [row(`refused: HTTP ${status} to a POST`, 'warn')],
    hints: [
      `end_session_endpoint answers a POST with HTTP ${status}: this IdP takes RP-Initiated Logout by GET only (Glewlwyd 2.7 does), so auth.endSession: post leaves the user on its error page with its session alive, and the next sign-in asks for no password; use auth.endSession: get, or client-id where the IdP takes it.`,
    ],
  }
}

/**
 * Back-Channel Logout 1.0 §2.1: an OP that does not advertise
 * `backchannel_logout_supported` may still send logout tokens. Glewlwyd
 * 2.7 sends them, once the client has a `backchannel_logout_uri`, and
 * advertises nothing, so its row's `warn` read as "not available".
 */
export function backchannelLogoutHints(
  config: GatehouseConfig,
  as: Readonly<oauth.AuthorizationServer>,
): string[] {
  if (as.backchannel_logout_supported === true) return []
  const uris = [
    ...new Set(config.frontends.map((f) => `${f.publicUrl}${f.auth.basePath}/backchannel-logout`)),
  ]
  return [
    `the identity provider does not advertise backchannel_logout_supported: if it sends logout tokens all the same (Glewlwyd 2.7 does, without saying so), register ${uris.join(' or ')} as the client's backchannel_logout_uri; if it does not, a sign-out at the identity provider ends a Gatehouse session only when its refresh token is refused, or at its expiry.`,
  ]
}

/**
 * `auth.endSession: client-id` names the client by `client_id` alone,
 * which RP-Initiated Logout 1.0 §2 allows; Glewlwyd 2.7 ends nothing
 * without `id_token_hint` and answers an empty 200, a blank page with its
 * session alive, which nothing tells the gateway. The probe is that same
 * GET, without a cookie of the IdP: there is no session for it to end. An
 * empty 200 is what is warned of; any page, redirect or error is not.
 */
export async function probeEndSessionClientId(
  config: GatehouseConfig,
  as: Readonly<oauth.AuthorizationServer>,
  http: { readonly fetch: (url: string, init: RequestInit) => Promise<Response>; readonly timeout: number },
): Promise<{ rows: Row[]; hints: string[] }> {
  if (config.auth.endSession !== 'client-id' || typeof as.end_session_endpoint !== 'string') {
    return { rows: [], hints: [] }
  }
  const row = (advertised: string, verdict: Row['verdict']): Row => ({
    capability: 'end-session by client_id',
    need: 'auth.endSession: client-id',
    advertised,
    verdict,
  })
  const url = new URL(as.end_session_endpoint)
  url.searchParams.set('client_id', config.oidc.clientId)
  let status: number
  let empty: boolean
  try {
    const response = await http.fetch(url.href, {
      redirect: 'manual',
      signal: AbortSignal.timeout(http.timeout),
    })
    status = response.status
    // A page says something; its first byte is all that is read of it.
    const reader = response.body?.getReader()
    empty = true
    while (reader) {
      const { done, value } = await reader.read()
      if (done) break
      if (value.byteLength > 0) {
        empty = false
        break
      }
    }
    await reader?.cancel()
  } catch (err) {
    const cause = networkCause(err, { total: { ms: http.timeout, name: 'oidc.timeout' } })
    return { rows: [row(`not answered: ${cause ?? (err as Error).message}`, '-')], hints: [] }
  }
  if (status !== 200 || !empty) return { rows: [row(`taken (HTTP ${status})`, 'ok')], hints: [] }
  return {
    rows: [row('an empty HTTP 200 without id_token_hint', 'warn')],
    hints: [
      'end_session_endpoint answers a logout request without id_token_hint with an empty HTTP 200: this IdP ends nothing without the ID token (Glewlwyd 2.7 does so), so auth.endSession: client-id leaves the user on a blank page with its session alive, and the next sign-in asks for no password; use auth.endSession: get.',
    ],
  }
}
