import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { RouteConfig } from '../config/types.js'
import type { DpopProofs } from '../dpop/proofs.js'
import { gatehouseError } from '../errors.js'
import { type AntiForgeryConfig, csrfCheck, navigationsOnlyCheck } from '../guards/csrf.js'
import type { IdentityProviders } from '../oidc/providers.js'
import type { Sessions } from '../session/sessions.js'
import { NOT_IN_MEMORY, type SessionData } from '../session/types.js'
import { sessionAudience } from '../tokens/audience.js'
import type { ClientTokens } from '../tokens/client-tokens.js'
import type { UserTokens } from '../tokens/user-tokens.js'
import type { DpopKey, SessionIssuer } from '../types.js'
import { bodyLimiter } from './body-limit.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The bearer token to forward upstream; `null` forwards none. */
    upstreamToken: string | null
    /** The session's DPoP key, on a `dpop` route: the token goes out with a proof made with it. */
    upstreamDpopKey: DpopKey | null
    /** The DPoP proof for this request to the upstream, once made (src/proxy/dpop-proof.ts). */
    upstreamProof: string | null
  }
}

export interface GuardDeps {
  /** Only what the anti-forgery checks read. */
  readonly config: AntiForgeryConfig
  readonly sessions: Sessions
  readonly userTokens: UserTokens
  readonly clientTokens: ClientTokens
  /** Whether a session's provider is still the one that issued its tokens (`routes[].identityProviders`). */
  readonly providers: Pick<IdentityProviders, 'ofSession'>
  /**
   * The proofs of the session keys to the IdP (the OIDC client's): when set,
   * the routes make upstream proofs too, with nonces of their own (routes.ts).
   */
  readonly dpop?: DpopProofs | undefined
}

/**
 * Whether the route's upstream gets a token on the strength of the
 * request's session: the session's own (`user`, `optional-user`,
 * `exchange`), or the gateway's, given out to signed-in users only
 * (`client` without `anonymous`). A request that forges the session's
 * cookie then acts as the user.
 */
export function tokenOfSession(route: RouteConfig): boolean {
  return route.token === 'client' ? !route.anonymous : route.token !== 'none'
}

/** A route's preHandler: callback-style, so a request that need not wait takes no promise. */
export type RouteGuard = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void

/**
 * The preHandler of one proxy route, built once at startup: anti-forgery
 * first, so a forged call never costs a session read, then the token the
 * route asks for. `antiForgery` replaces the header check (WebSocket upgrades).
 * A `csrf: false` route that sends a token for the session still takes from
 * other origins only navigations with GET (`navigationsOnlyCheck`).
 *
 * When the session and a fresh token are already in this process (the
 * memory store, or a shared store's local copy: `Sessions.peek`), the guard
 * finishes synchronously; only a read or refresh that must wait goes
 * through a promise. Both paths run the same checks in the same order.
 */
export function routeGuard(
  route: RouteConfig,
  deps: GuardDeps,
  antiForgery: (request: FastifyRequest) => void = csrfCheck(deps.config),
): RouteGuard {
  const csrf = route.csrf
    ? antiForgery
    : tokenOfSession(route)
      ? navigationsOnlyCheck(deps.config)
      : undefined
  const limit = bodyLimiter(route.bodyLimit)
  const ofProvider = providerCheck(route.identityProviders, deps.providers)
  const scopes = route.scopes
  const dpop = route.dpop
  switch (route.token) {
    case 'none':
      return function guardNone(request, _reply, done) {
        csrf?.(request)
        limit(request)
        done()
      }
    case 'client': {
      // The gateway's own credentials: serving them to anyone who asks lets
      // anyone act as the gateway, so a session is required unless the route
      // opts out by name (`anonymous: true`).
      const anonymous = route.anonymous
      // The gateway's credentials at the route's provider (config/types.ts), else the first of all.
      const idp = route.clientIdentityProvider
      const attach = async (request: FastifyRequest) => {
        if (!anonymous) {
          const session = await deps.sessions.current(request)
          if (!session) throw gatehouseError('GATEHOUSE_ERR_UNAUTHENTICATED')
          ofProvider?.(session)
          if (endsWithItsToken(session, deps)) await deps.userTokens.accessToken(session)
        }
        const token = await deps.clientTokens.token(scopes, dpop, idp)
        request.upstreamToken = token.accessToken
        if (token.dpopKey) request.upstreamDpopKey = token.dpopKey
      }
      return function guardClient(request, _reply, done) {
        csrf?.(request)
        limit(request)
        attach(request).then(() => done(), done)
      }
    }
    default: {
      // An exchange route, like a user route, needs a session to exchange from.
      const required = route.token === 'user' || route.token === 'exchange'
      const audienceOf = sessionAudience(route)
      /** The session's token when it need not be refreshed; `undefined` when it must be. */
      const fresh = (session: SessionData): string | undefined => {
        const audience = audienceOf(session)
        if (deps.userTokens.needsRefresh(session, audience)) return undefined
        if (audience === undefined) return session.tokens.accessToken
        // A removed provider's session lasts as long as its login token: a
        // token of the route's own, exchanged or minted before the reload,
        // must not carry it past that (`endsWithItsToken`).
        if (endsWithItsToken(session, deps)) return undefined
        return session.tokens.audiences![audience.key]!.accessToken
      }
      const attach = (
        request: FastifyRequest,
        session: SessionData | undefined,
        token: string | undefined,
      ) => {
        if (!session) {
          if (required) throw gatehouseError('GATEHOUSE_ERR_UNAUTHENTICATED')
          return
        }
        request.upstreamToken = token ?? null
        // A session keeps the binding it signed in with, whatever
        // `oidc.dpop` says now: one with a key proves it, one signed in
        // without (DPoP was off) sends its bearer token.
        if (dpop && session.dpopKey) request.upstreamDpopKey = session.dpopKey
      }
      const wait = async (request: FastifyRequest) => {
        const session = await deps.sessions.current(request)
        // Before any token is read or refreshed: another provider's token
        // must never reach this upstream, nor its refresh be spent on it.
        if (session) ofProvider?.(session)
        // Its login token due, a removed provider's session is over, whatever
        // the route's own token says: UserTokens ends it.
        if (session && endsWithItsToken(session, deps)) await deps.userTokens.accessToken(session)
        const token =
          session && (fresh(session) ?? (await deps.userTokens.accessToken(session, audienceOf(session))))
        attach(request, session, token)
      }
      return function guardUser(request, _reply, done) {
        csrf?.(request)
        limit(request)
        const session = deps.sessions.peek(request)
        if (session !== NOT_IN_MEMORY) {
          if (session) ofProvider?.(session)
          const token = session && fresh(session)
          if (!session || token !== undefined) {
            attach(request, session, token)
            done()
            return
          }
        }
        wait(request).then(() => done(), done)
      }
    }
  }
}

/**
 * True when the session is a removed provider's (a reload removed its
 * provider, gave it another issuer or client id, or took it off the
 * frontend's list: `IdentityProviders.ofSession`), and so lasts only as
 * long as its login token. A route that does not send that token (`token:
 * client`, or a route with a token of its own: exchanged, or for a
 * `resource` or `scopes`) asks UserTokens for it once it is due, as a
 * plain user route would: UserTokens refreshes nothing of such a session
 * and ends it (`GATEHOUSE_ERR_SESSION_EXPIRED`). Else the session's cookie
 * would go on earning the gateway's token until the session's own expiry,
 * hours after every user route had ended it, and a route token exchanged
 * or minted just before the reload would serve for most of its lifetime
 * past the end `/auth/user` gave.
 */
export function lastsAsRemoved(session: SessionIssuer, deps: Pick<GuardDeps, 'providers'>): boolean {
  return deps.providers.ofSession(session) === undefined
}

/** `lastsAsRemoved`, with the login token due: the session is over, and UserTokens ends it. */
function endsWithItsToken(session: SessionData, deps: Pick<GuardDeps, 'providers' | 'userTokens'>): boolean {
  return lastsAsRemoved(session, deps) && deps.userTokens.needsRefresh(session)
}

/**
 * `routes[].identityProviders`: throws `GATEHOUSE_ERR_WRONG_IDENTITY_PROVIDER`
 * for a session of any other provider, and for one of a listed name that a
 * reload has since given another issuer or client id: the route serves the
 * provider that name now is, and the session's tokens are another's, as a
 * removed provider's are; `undefined` when the route serves every provider.
 */
function providerCheck(
  listed: readonly string[] | undefined,
  providers: GuardDeps['providers'],
): ((session: SessionIssuer) => void) | undefined {
  if (listed === undefined) return undefined
  const allowed = new Set(listed)
  return (session) => {
    if (!allowed.has(session.idp) || providers.ofSession(session) === undefined)
      throw gatehouseError('GATEHOUSE_ERR_WRONG_IDENTITY_PROVIDER')
  }
}
