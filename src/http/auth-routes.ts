import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { GatehouseConfig, IdentityProviderConfig } from '../config/types.js'
import { causeName, gatehouseError } from '../errors.js'
import { type AntiForgeryConfig, csrfCheck } from '../guards/csrf.js'
import { navigationCheck, startedElsewhere } from '../guards/navigation.js'
import type { OidcClient, RedirectUris } from '../oidc/client.js'
import type { IdentityProviders } from '../oidc/providers.js'
import { interactionRequired } from '../oidc/translate.js'
import { sessionLogId } from '../session/log-id.js'
import { COOKIE_BYTES_MAX } from '../session/login-cookies.js'
import { type Sessions, sessionEndsAt } from '../session/sessions.js'
import type { SessionData } from '../session/types.js'
import { chosenProvider } from './chosen-provider.js'
import { loginParams } from './login-params.js'
import { type OwedRevocations, unanswered } from './owed-revocations.js'
import { endSessionCsp, endSessionPage, landingPage, PAGE_CSP } from './pages.js'
import { safeReturnTo, withQuery } from './return-to.js'
import { endSessionsOverBound } from './sessions-per-user.js'
import {
  asGatehouseError,
  giveBack,
  owe,
  replacedSession,
  revokeReplaced,
  weighGrant,
} from './sign-in-grants.js'

/** What the auth routes read of the config. */
export interface AuthRoutesConfig extends AntiForgeryConfig {
  readonly auth: GatehouseConfig['auth']
  readonly identityProviders: readonly Pick<IdentityProviderConfig, 'name' | 'scopes'>[]
  readonly server: Pick<GatehouseConfig['server'], 'publicUrl'>
  readonly session: Pick<GatehouseConfig['session'], 'sameSite' | 'maxPerUser'>
}

export interface AuthRouteDeps {
  readonly config: AuthRoutesConfig
  readonly providers: IdentityProviders
  readonly sessions: Sessions
  /** Told of each completed login, by whether the IdP issued a refresh token, and at which provider. */
  readonly onLogin?: (refreshToken: 'issued' | 'missing', idp: string) => void
  /** Told of each session a sign-in ends beyond `session.maxPerUser`, and of each sign-in that could not check it. */
  readonly onOverBound?: (result: 'ended' | 'unchecked', idp: string) => void
  /** The frontend these routes sign in to; absent: the whole origin is one frontend. */
  readonly frontend?: FrontendBounds
  /** Where a revocation the IdP did not answer is owed, to be made once it does (server/lasting.ts). */
  readonly owedRevocations?: OwedRevocations
}

/** What sign-in needs to know of its frontend (`frontends[]`). */
export interface FrontendBounds {
  /** Its `frontends[].name`: names its sign-in rate-limit counters in a shared store. */
  readonly name: string
  /** Its redirect URIs at the IdP. */
  readonly uris: RedirectUris
  /** Where a sign-in without `returnTo`, and a sign-out, land. */
  readonly home: string
  /** True when this frontend serves `path`: a `returnTo` anywhere else is refused. */
  owns(path: string): boolean
}

const UNREFRESHABLE =
  'offline_access was requested but the identity provider issued no refresh token, so this session ends when its access token expires. Providers that follow OIDC Core §11 (oidc-provider, and others certified strict) honour offline_access only with prompt=consent: set oidc.authorizationParams.prompt: consent. Google needs access_type: offline and prompt: consent. Otherwise allow the refresh_token grant for this client at the IdP. See docs/identity-providers.md.'

/**
 * `login`, `callback`, `user` and `logout` under `auth.basePath`. Each
 * throws catalogue errors; the error handler renders those of browser
 * navigations (login, callback, logout: `renders: 'page'`) as an HTML page
 * that links back to `request.returnTo`, and those of `user`, an API, as JSON.
 */
export async function authRoutes(app: FastifyInstance, deps: AuthRouteDeps) {
  const { config, providers, sessions } = deps
  const wantsRefresh = new Set(
    config.identityProviders.filter((p) => p.scopes.includes('offline_access')).map((p) => p.name),
  )
  const base = config.auth.basePath
  const checkCsrf = csrfCheck(config)
  const uris = deps.frontend?.uris
  const home = deps.frontend?.home ?? '/'

  /** The callback's last step: to `returnTo`, through a page of ours when the cookie is strict. */
  function land(reply: FastifyReply, location: string) {
    if (config.session.sameSite !== 'strict') return reply.redirect(location, 302)
    return reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', PAGE_CSP)
      .header('referrer-policy', 'no-referrer')
      .send(landingPage(location))
  }

  // Login and callback cost an IdP round trip and a cookie each: a per-IP
  // budget keeps one client from turning them into a flood.
  const rateLimit = { max: config.auth.rateLimit.max, timeWindow: config.auth.rateLimit.window }
  // Route-level `onRequest` hooks run in order, and @fastify/rate-limit
  // appends its own to the route's: what is not a navigation is refused
  // before it counts. Another site's frame cannot sign in, but the IdP
  // redirects a frame of the app's own (a silent sign-in) to the callback,
  // and fetch metadata then calls it cross-site.
  const loginNavigation = navigationCheck({ framedByOtherSites: false })
  const callbackNavigation = navigationCheck({ framedByOtherSites: true })
  // The sign-in cookies belong to these two routes: no other route opens or writes them.
  const loginCookies = app.sealedCookies.login

  app.get<{ Querystring: Record<string, unknown> }>(
    `${base}/login`,
    {
      config: { renders: 'page', refusal: 'login refused', rateLimit },
      onRequest: async (request) => loginNavigation(request),
    },
    async (request, reply) => {
      const asked = request.query.returnTo
      const returnTo =
        asked === undefined || asked === '' ? home : safeReturnTo(asked, config.server.publicUrl)
      // Another frontend's path is refused like another site: a login
      // through one frontend must not land the browser in another.
      if (returnTo === undefined || (deps.frontend && !deps.frontend.owns(returnTo)))
        throw gatehouseError('GATEHOUSE_ERR_INVALID_RETURN_TO')
      request.returnTo = returnTo
      const oidc = chosenProvider(request.query.idp, providers)
      const extra = loginParams(request.query, config.auth.loginParams, oidc.metadata)
      // The login state names the provider, so the callback redeems the code
      // where it was issued, and validates `iss` (RFC 9207) against that one.
      const target = await oidc.authorizationUrl(returnTo, extra, uris)
      const held = sessions.refOf(request)
      const sealed = loginCookies.seal(
        held === undefined ? target.state : { ...target.state, heldKey: held.key.toCookie() },
      )
      // A cookie over the limit is dropped by the browser without a word, and
      // the user would learn it only back from the IdP: say it now.
      if (sealed.bytes > COOKIE_BYTES_MAX) {
        // The error page's "sign in again" must not come back here.
        request.returnTo = null
        throw gatehouseError(
          'GATEHOUSE_ERR_INVALID_RETURN_TO',
          `returnTo is too long to carry through sign-in: with the sign-in's own state it makes a ${sealed.bytes}-byte cookie, and browsers drop cookies over ${COOKIE_BYTES_MAX} bytes. Link to a shorter path (this one has ${returnTo.length} characters once percent-encoded).`,
        )
      }
      loginCookies.add(request, reply, sealed)
      return reply.redirect(target.url.href, 302)
    },
  )

  // Each provider's own address (`callbackPath`: one per provider with
  // `identityProviders`), and a callback must arrive at its login's
  // provider's. Only the addresses of this frontend's providers are
  // served: any other is a 404 like every path that is not ours.
  const callbackOptions = {
    config: { renders: 'page', refusal: 'login callback refused', rateLimit },
    onRequest: async (request: FastifyRequest) => {
      callbackNavigation(request)
      // The callback takes frames of other sites (a silent sign-in's), so
      // another site's hidden frames, or a popup it sends here again and
      // again, would spend the budget until the user's own return from the
      // IdP answered 429. Such a request carries no sign-in cookie for its
      // `state` (they are SameSite=Lax, and only the browser's own sign-in
      // knows its state), so it could complete nothing: refused before it
      // counts, as the handler would refuse it after.
      if (startedElsewhere(request) && !loginCookies.carries(request, stateOf(request)))
        throw noPendingSignIn(request)
    },
  } as const
  for (const path of new Set(providers.all.map((p) => p.callbackPath))) {
    app.get(`${base}${path}`, callbackOptions, (request, reply) => callback(request, reply, path))
  }

  async function callback(request: FastifyRequest, reply: FastifyReply, arrivedAt: string) {
    const url = new URL(request.url, config.server.publicUrl)
    // Only the sign-in this `state` names: one the browser has in another
    // tab stays as it is, and a callback naming none (a stale link, another
    // site's) changes nothing. The one named is single use: whatever happens
    // next, it is spent. `validateAuthResponse` still checks `state` (it
    // refuses a repeated one, which `get` does not see).
    const login = loginCookies.take(request, reply, url.searchParams.get('state'))
    if (!login) throw noPendingSignIn(request)
    request.returnTo = login.returnTo
    // A login started before sessions had providers is the shorthand's, the
    // first. The code is redeemed only where the browser was sent: a reload
    // since that gave the name another issuer or client id would hand the
    // new one a code, and a PKCE verifier, of another's.
    const oidc = providers.ofSession({
      idp: login.idp ?? providers.default.name,
      registration: login.registration,
    })
    if (!oidc) {
      throw gatehouseError(
        'GATEHOUSE_ERR_LOGIN_FAILED',
        'The identity provider this sign-in started with is no longer configured, or now has another issuer or client id. Start again.',
      )
    }
    // RFC 9700 §4.4: an answer at another provider's address is a code
    // that provider issued, sent here by a provider that forwarded the
    // browser (a mix-up). Redeemed at this login's provider, it would hand
    // that provider the code; refused before any call, it goes nowhere.
    if (arrivedAt !== oidc.callbackPath) {
      throw gatehouseError(
        'GATEHOUSE_ERR_LOGIN_FAILED',
        `This sign-in started with identity provider ${oidc.name}, but the browser came back at the address of another identity provider, not at ${base}${oidc.callbackPath}: the answer is refused. Start again.`,
      )
    }
    let result: Awaited<ReturnType<OidcClient['callback']>>
    try {
      result = await oidc.callback(url, login, uris, (refreshToken, holder) =>
        giveBack(request, oidc, refreshToken, holder, deps, login),
      )
    } catch (err) {
      // OIDC Core §3.1.2.6: the answer to prompt=none when the user would
      // have to interact. The SPA asked a question; give it the answer.
      const interaction = interactionRequired(err)
      if (!interaction) throw err
      request.log.info({ error: interaction }, 'silent login needs interaction')
      return land(reply, withQuery(login.returnTo, 'error', interaction))
    }
    // Weighed before the new session is made: making it ends the old one.
    const replaced = await replacedSession(request, login, result, deps)
    let session: SessionData
    try {
      session = await sessions.create(request, result, replaced?.id ?? login.heldSession)
    } catch (err) {
      await giveBack(request, oidc, result.tokens.refreshToken, result, deps, login)
      throw err
    }
    await revokeReplaced(request, replaced, deps)
    await endSessionsOverBound(request, session, deps)
    // The browser's other tabs' sign-ins replace this session in turn.
    loginCookies.hold(request, reply, login.state, session.key.toCookie())
    const refreshToken = result.tokens.refreshToken ? 'issued' : 'missing'
    deps.onLogin?.(refreshToken, oidc.name)
    // A silent login (prompt=none) cannot carry prompt=consent, so a strict
    // OP rightly drops offline_access: expected, not a misconfiguration.
    if (refreshToken === 'missing' && wantsRefresh.has(oidc.name) && !login.silent) {
      request.log.warn({ idp: oidc.name, issuer: oidc.issuer }, UNREFRESHABLE)
    }
    request.log.info({ idp: oidc.name, refreshToken }, 'login completed')
    return land(reply, login.returnTo)
  }

  app.get(`${base}/user`, { config: { renders: 'json' } }, async (request, reply) => {
    checkCsrf(request)
    const session = await sessions.current(request)
    if (!session) throw gatehouseError('GATEHOUSE_ERR_UNAUTHENTICATED')
    // Without a refresh token, or without the provider that issued it (a
    // reload removed it, or gave its name another issuer or client id), the
    // session ends with its access token: the SPA must hear that time, not
    // the idle expiry it would never reach.
    const refreshable =
      session.tokens.refreshToken !== undefined && providers.ofSession(session) !== undefined
    const endsAt = refreshable
      ? sessionEndsAt(session)
      : Math.min(sessionEndsAt(session), session.tokens.accessTokenExpiresAt)
    return reply.send({
      idp: session.idp,
      sub: session.sub,
      claims: session.claims,
      refreshable,
      sessionExpiresAt: new Date(endsAt).toISOString(),
      logoutUrl: `${base}/logout?sid=${encodeURIComponent(session.logoutHandle)}`,
    })
  })

  app.get(
    `${base}/logout`,
    { config: { renders: 'page' } },
    async (request: FastifyRequest<{ Querystring: { sid?: unknown } }>, reply) => {
      const session = await sessions.current(request)
      if (!session) return reply.redirect(home, 302)
      // A logout link must carry the handle only our own page knows, so a
      // third-party page cannot log users out by embedding the URL.
      if (request.query.sid !== session.logoutHandle) throw gatehouseError('GATEHOUSE_ERR_INVALID_LOGOUT')
      // Revocation and the end-session request go to the session's own
      // provider; one removed by a reload can do neither, nor one whose name
      // a reload gave to another issuer or client id (its refresh token and
      // ID token are a secret of the one that issued them), and the session
      // still ends here.
      const oidc = providers.ofSession(session)
      const refreshToken = session.tokens.refreshToken
      // RFC 7009 §2.1: the grant goes with the token, and another live
      // session may hold it: this browser's at another frontend of the
      // client (oidc-provider keeps one grant per client in the IdP
      // session), or the user's in another browser (Keycloak and Auth0
      // revoke per user and client). Whether those end is the IdP's to say,
      // at its end-session endpoint. A store that cannot say answers 503,
      // and the session stays for the user to try again.
      const grant = oidc && refreshToken ? { ...session, refreshToken } : undefined
      let verdict = grant && (await weighGrant(grant, undefined, deps))
      // Deleted before the revocation: a store that answered the read above
      // may still refuse the write (a primary short of its replicas), and a
      // session left behind with its grant revoked is signed in with nothing
      // to refresh; one deleted whose revocation the IdP does not answer
      // is revoked once it does (`owe`).
      await sessions.destroy(request, session)
      // Kept for another session: weighed again now that this one has
      // ended, since that one may be logging out too, on this instance or
      // another. Each of a user's sessions logging out at once had weighed
      // before any ended, saw the others live, and kept its grant, and
      // every grant outlived them all; the one that weighs last now sees
      // the others gone.
      if (grant && verdict && 'kept' in verdict) {
        try {
          verdict = await weighGrant(grant, undefined, deps)
        } catch (err) {
          // Unknown is not "none": kept, as the first weighing said.
          const error = asGatehouseError(err)
          request.log.warn(
            {
              session: sessionLogId(session.id),
              idp: session.idp,
              code: error.code,
              cause: causeName(error),
            },
            'logout: the session store could not be read again to say whether another session still shares its grant',
          )
        }
      }
      if (verdict && 'kept' in verdict) {
        request.log.info(
          { session: sessionLogId(session.id), idp: session.idp },
          `logout: its refresh token is not revoked, since ${verdict.kept}`,
        )
      } else if (verdict) {
        try {
          await verdict.revoke.oidc.revoke(verdict.revoke.refreshToken)
        } catch (err) {
          // The user asked to leave; an IdP outage must not keep them in.
          // The record was the token's only copy: the revocation is owed.
          const error = asGatehouseError(err)
          request.log.warn({ code: error.code, cause: causeName(error) }, 'refresh token revocation failed')
          if (unanswered(error)) owe(deps.owedRevocations, verdict.revoke, request)
        }
      }
      const mode = config.auth.endSession
      const loginHint = session.claims.login_hint
      const end = oidc?.endSessionRequest(
        mode === 'client-id' ? undefined : session.tokens.idToken,
        typeof loginHint === 'string' ? loginHint : undefined,
        uris,
      )
      if (!end) return reply.redirect(home, 302)
      if (mode !== 'post') {
        for (const [name, value] of end.params) end.endpoint.searchParams.append(name, value)
        return reply.redirect(end.endpoint.href, 302)
      }
      return (
        reply
          .header('content-type', 'text/html; charset=utf-8')
          .header('content-security-policy', endSessionCsp(end.endpoint, config.server.publicUrl))
          // The origin only: the logout URL's handle stays here, and the POST
          // still carries an Origin an OP may check (no-referrer would send null).
          .header('referrer-policy', 'strict-origin')
          .send(endSessionPage(end.endpoint, end.params))
      )
    },
  )
}

/** A callback whose `state` names no sign-in this browser has in progress. */
const NO_PENDING_SIGN_IN =
  'This sign-in link has expired or was already used, or cookies are blocked. Start again.'

/**
 * The error codes an authorization response may carry: RFC 6749 §4.1.2.1,
 * OIDC Core §3.1.2.6, RFC 8707 §2. Only these are repeated on the page of
 * a callback that matches no sign-in: anyone can make such a link.
 */
const AUTHORIZATION_ERRORS: ReadonlySet<string> = new Set([
  'invalid_request',
  'unauthorized_client',
  'access_denied',
  'unsupported_response_type',
  'invalid_scope',
  'server_error',
  'temporarily_unavailable',
  'interaction_required',
  'login_required',
  'account_selection_required',
  'consent_required',
  'invalid_request_uri',
  'invalid_request_object',
  'request_not_supported',
  'request_uri_not_supported',
  'registration_not_supported',
  'invalid_target',
])

/**
 * The refusal of a callback that matches no sign-in in progress. One that
 * carries an `error` is the IdP refusing the request without its `state`
 * (RFC 6749 §4.1.2.1 requires it): said as an expired link, it named the
 * user's browser for the IdP's refusal (an unknown scope, a client not
 * allowed the grant), and the IdP's error went nowhere.
 */
function noPendingSignIn(request: FastifyRequest) {
  const params = new URL(request.url, 'http://gatehouse.invalid').searchParams
  const error = params.get('error')
  if (error === null) return gatehouseError('GATEHOUSE_ERR_LOGIN_FAILED', NO_PENDING_SIGN_IN)
  const named = AUTHORIZATION_ERRORS.has(error) ? ` (${error})` : ''
  const matched =
    params.get('state') === null
      ? 'without the state of a sign-in (RFC 6749 §4.1.2.1 requires it), so it matches none in progress in this browser'
      : 'for a sign-in this browser no longer has in progress (expired or already used, or cookies are blocked)'
  return gatehouseError(
    'GATEHOUSE_ERR_LOGIN_FAILED',
    `The identity provider answered with an error${named}, ${matched}. Start again; if it happens again, the identity provider refuses the sign-in request.`,
  )
}

/** The callback's `state`, read as the handler reads it: the first, if repeated. */
function stateOf(request: FastifyRequest): string | null {
  return new URL(request.url, 'http://gatehouse.invalid').searchParams.get('state')
}
