import * as oauth from 'oauth4webapi'
import { dpopThumbprint, generateDpopKey, publicKeyId } from '../dpop/keys.js'
import type { LoginState } from '../types.js'
import { retryOnDpopNonce } from './dpop.js'
import type { IdpCalls } from './idp-calls.js'
import { resourcesDigest } from './login-resources.js'

/**
 * The URL a sign-in sends the browser to, at the discovered `as`, and the
 * login's state (client.ts `authorizationUrl`, which says what `extra` is).
 * With PAR (RFC 9126 §4), the parameters go over the back channel and the
 * URL carries only `client_id` and `request_uri`.
 */
export async function authorizationRequest(
  calls: IdpCalls,
  as: Readonly<oauth.AuthorizationServer>,
  returnTo: string,
  extra: Readonly<Record<string, string>>,
  redirectUri: string,
): Promise<{ url: URL; state: LoginState }> {
  const oidc = calls.oidc
  const codeVerifier = oauth.generateRandomCodeVerifier()
  // RFC 9449 §5: a new key for every login, so no two sessions share one.
  // `dpop` decides here, for new logins only; a session keeps its key.
  const dpopKey = oidc.dpop ? await generateDpopKey(oidc.dpopAlgorithm, 'sign-in') : undefined
  const params = new URLSearchParams({ ...oidc.authorizationParams, ...extra })
  // The configured max_age is the deployment's bound: a sign-in link may
  // ask for a fresher authentication (a step-up), never an older one.
  const maxAge = strictest(
    maxAgeOf(oidc.authorizationParams.max_age ?? null),
    maxAgeOf(extra.max_age ?? null),
  )
  if (maxAge !== undefined) params.set('max_age', String(maxAge))
  const state: LoginState = {
    state: oauth.generateRandomState(),
    nonce: oauth.generateRandomNonce(),
    codeVerifier,
    returnTo,
    idp: oidc.name,
    startedAt: calls.now(),
    registration: calls.registration(),
    ...(extra.prompt === 'none' ? { silent: true } : {}),
    ...(dpopKey ? { dpopKey } : {}),
    resources: resourcesDigest(calls.resources),
    ...(maxAge === undefined ? {} : { maxAge }),
  }
  params.set('client_id', calls.client().client_id)
  params.set('redirect_uri', redirectUri)
  params.set('response_type', 'code')
  params.set('scope', calls.scopes)
  params.set('state', state.state)
  params.set('nonce', state.nonce)
  params.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier))
  params.set('code_challenge_method', 'S256')
  // RFC 8707 §2: one `resource` parameter per resource, so the grant covers every route's.
  for (const resource of calls.resources) params.append('resource', resource)
  // RFC 9449 §10: binds the code to the session's key. With PAR the
  // request's proof binds it too (§10.1), and the IdP checks both agree.
  if (dpopKey) params.set('dpop_jkt', await dpopThumbprint(dpopKey))
  const url = new URL(as.authorization_endpoint!)
  if (oidc.par !== 'off' && as.pushed_authorization_request_endpoint) {
    try {
      // RFC 9449 §10.1: the pushed request carries a proof of the session's key.
      const pushed = await retryOnDpopNonce(dpopKey, async () => {
        const response = await oauth.pushedAuthorizationRequest(
          as,
          calls.client(),
          await calls.auth,
          params,
          await calls.options(dpopKey),
        )
        return oauth.processPushedAuthorizationResponse(as, calls.client(), response)
      })
      calls.observer.accepted?.('par')
      url.searchParams.set('client_id', calls.client().client_id)
      url.searchParams.set('request_uri', pushed.request_uri)
    } catch (err) {
      // The pushed request carried the login's state and nonce (RFC 9126
      // §2.1), which an IdP quoting what it refused would put in the log.
      throw calls.failed('par', err, state.state, state.nonce)
    } finally {
      // The key's next use is the callback, which a visitor who only
      // starts sign-ins never reaches: kept ready, each start took a
      // place among the signed-in sessions' (MAX_KEYS) and pushed theirs out.
      if (dpopKey) calls.dpop.forget(publicKeyId(dpopKey))
    }
  } else {
    // Appended, not set: `resource` repeats (RFC 8707 §2).
    for (const [name, value] of params) url.searchParams.append(name, value)
  }
  return { url, state }
}

/**
 * A `max_age` parameter's seconds (OIDC Core §3.1.2.1: a non-negative
 * integer); anything else is no number the IdP can honour, so none to check.
 */
function maxAgeOf(value: string | null): number | undefined {
  return value !== null && /^\d{1,10}$/.test(value) ? Number(value) : undefined
}

/** The shorter of two `max_age`s, either maybe absent. */
function strictest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b)
}
