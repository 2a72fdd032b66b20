/**
 * What a sign-in does with the grants at the identity provider that no
 * session will hold once it is over. Revoking a refresh token revokes its
 * grant (RFC 7009 §2.1), and the IdP may have given one grant to several
 * sessions (oidc-provider keeps one per client in the browser's IdP
 * session), so a grant is revoked only when no live session may share it.
 */
import type { FastifyRequest } from 'fastify'
import { causeName, type GatehouseError, gatehouseError, isGatehouseError } from '../errors.js'
import type { OidcClient } from '../oidc/client.js'
import type { IdentityProviders } from '../oidc/providers.js'
import type { GrantHolder } from '../oidc/rotated.js'
import type { Sessions } from '../session/sessions.js'
import type { LoginState } from '../types.js'
import { lookedUpBy, sessionsOfClient } from './sessions-of-client.js'

/** What these decisions read: the sessions of the sign-in's frontend, and the providers. */
export interface SignInDeps {
  readonly sessions: Sessions
  readonly providers: IdentityProviders
}

/** `err` as a catalogue error: itself, or an internal error caused by it. */
export function asGatehouseError(err: unknown): GatehouseError {
  return isGatehouseError(err) ? err : gatehouseError('GATEHOUSE_ERR_INTERNAL', undefined, err)
}

/**
 * The refresh token of a login refused after the code exchange (its ID
 * token's checks, its claims, userinfo) or whose session could not be
 * stored: no session holds it and no cookie was sent, so nothing can ever use it,
 * yet the IdP keeps its grant alive. Revoked (RFC 7009) so the failed
 * sign-in leaves no live grant behind; best effort, as the store's
 * failure is the answer either way.
 *
 * Not when the browser holds a session already: the IdP may have continued
 * that session's grant (oidc-provider reuses the grant of the browser's IdP
 * session), and revoking a refresh token revokes its grant (RFC 7009 §2.1),
 * so the failed sign-in would end the session that still works, as a
 * sign-in over a live session would (docs/security.md, session fixation).
 * Held when the login started counts too: a `SameSite=Strict` cookie does
 * not come with the IdP's cross-site redirect here. So does a session of
 * any frontend, in the store, of the IdP session the answer names (else of
 * its user): frontends that sign in at one client share its grant, and
 * another host's cookie never comes here. Nor when the store cannot say
 * (Redis down, as when the session could not be stored): the grant, if
 * no session holds it, lapses at the IdP by itself, with the refresh
 * token's lifetime.
 */
export async function giveBack(
  request: FastifyRequest,
  oidc: OidcClient,
  refreshToken: string | undefined,
  holder: GrantHolder,
  deps: SignInDeps,
  login: LoginState,
) {
  if (refreshToken === undefined) return
  let shared: boolean
  try {
    shared = await mayShareGrant(request, oidc, holder, deps, login)
  } catch (err) {
    // Unknown is not "none": a revoked grant another frontend's session
    // holds signs its user out, one no session holds lapses at the IdP.
    const error = asGatehouseError(err)
    request.log.warn(
      { idp: oidc.name, code: error.code, cause: causeName(error) },
      "sign-in failed after the code exchange: its refresh token is not revoked, since the session store could not say whether a session of the user's shares its grant at the identity provider",
    )
    return
  }
  if (shared) {
    request.log.info(
      { idp: oidc.name },
      "sign-in failed after the code exchange: its refresh token is not revoked, since a session of the user's may share its grant at the identity provider",
    )
    return
  }
  try {
    if (await oidc.revoke(refreshToken))
      request.log.info(
        { idp: oidc.name },
        'sign-in failed after the code exchange: its refresh token was revoked',
      )
    else
      request.log.info(
        { idp: oidc.name },
        'sign-in failed after the code exchange: the identity provider offers no revocation endpoint, so its refresh token stays valid there until it expires',
      )
  } catch (err) {
    const error = asGatehouseError(err)
    request.log.warn(
      { idp: oidc.name, code: error.code, cause: causeName(error) },
      'sign-in failed after the code exchange, and revoking its refresh token failed too',
    )
  }
}

/**
 * Whether a live session may hold the grant a refused sign-in was issued:
 * the browser's own (giveBack), or one of any frontend of the IdP session
 * (`sid`) the answer names. Naming none, one of its user at any frontend,
 * this one too: an IdP that keeps a grant per IdP session (oidc-provider)
 * gave another browser's another grant, but one that keeps a grant per
 * user and client gave all the same one, and which of the two an IdP that
 * names no IdP session is cannot be told. Throws when the store cannot be
 * read, as at a callback whose session could not be stored: then no one
 * knows.
 */
async function mayShareGrant(
  request: FastifyRequest,
  oidc: OidcClient,
  holder: GrantHolder,
  { sessions, providers }: SignInDeps,
  login: LoginState,
): Promise<boolean> {
  if (login.heldSession !== undefined || sessions.refOf(request) !== undefined) return true
  const by = lookedUpBy(holder)
  if (by === undefined) return false
  const ids = await sessionsOfClient(sessions.store, providers, oidc.registration, oidc.name, by)
  return ids.length > 0
}
