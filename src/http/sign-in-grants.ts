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
import { type IdentityProviders, sameRegistration } from '../oidc/providers.js'
import type { GrantHolder } from '../oidc/rotated.js'
import { sessionLogId } from '../session/log-id.js'
import type { PreviousSession, Sessions } from '../session/sessions.js'
import type { HeldGrant, SessionData } from '../session/types.js'
import type { LoginResult, LoginState } from '../types.js'
import { type OwedRevocations, unanswered } from './owed-revocations.js'
import { lookedUpBy, sessionsOfClient, sessionsOfUserAtClient } from './sessions-of-client.js'

/** What these decisions read: the sessions of the sign-in's frontend, and the providers. */
export interface SignInDeps {
  readonly sessions: Sessions
  readonly providers: IdentityProviders
  /** Where a revocation the IdP did not answer is owed, to be made once it does. */
  readonly owedRevocations?: OwedRevocations | undefined
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
 * any frontend, in the store, of the user the answer names (else of its
 * IdP session): frontends that sign in at one client share its grant, and
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
    // Owed as an ended session's is: no session holds this token, so
    // nothing else will ever revoke the grant it keeps alive at the IdP.
    if (unanswered(error)) owe(deps.owedRevocations, { oidc, refreshToken }, request)
  }
}

/**
 * Whether a live session may hold the grant a refused sign-in was issued:
 * the browser's own (giveBack), or one of its user at any frontend, this
 * one too (of the IdP session, `sid`, the answer names when it names no
 * user): an IdP that keeps a grant per IdP session (oidc-provider) gave
 * another browser's another grant, but one that keeps a grant per user and
 * client, or revokes per user and client (Keycloak, Auth0), even naming
 * IdP sessions, gave all the same one, and which of the two an IdP is
 * cannot be told. Throws when the store cannot be
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
  if (login.heldKey !== undefined || login.heldSession !== undefined || sessions.refOf(request) !== undefined)
    return true
  // Its user's when named, not only its IdP session's: an IdP that names
  // IdP sessions may still revoke per user and client (`mayContinue`).
  const by = holder.sub ? { sub: holder.sub } : lookedUpBy(holder)
  if (by === undefined) return false
  const ids = await sessionsOfClient(sessions.store, providers, oidc.registration, oidc.name, by)
  return ids.length > 0
}

/**
 * The session a sign-in replaces (session fixation: its record ends as the
 * new session is made), as read before that, and its refresh token when
 * the sign-in is to revoke it once the new session is stored.
 */
export interface Replaced {
  readonly id: string
  /** Revoked once the new session is stored; absent: kept, and the log said why. */
  readonly revoke?: Revocation
  /**
   * Kept so far, and weighed again once the new session is stored and the
   * old one has ended (`revokeReplaced`), which says why if kept still.
   */
  readonly reweigh?: {
    readonly grant: HeldGrant & { readonly id: string }
    readonly signedIn: GrantContinuer
  }
}

/**
 * The session the browser holds that a completed sign-in replaces: the
 * cookie's, or the one its login noted (`LoginState.heldKey`), which a
 * `SameSite=Strict` cookie does not bring to the callback; `undefined` when
 * it holds none (or only a login of the version before noted it, by an id
 * that opens nothing). Its grant goes as at logout (RFC 7009), since no
 * session will ever use it, unless it may live on:
 * - the new session may hold it, or die with it: the same client and the
 *   same user (`mayContinue`);
 * - another live session of its user at any frontend may (at an IdP that
 *   revokes per user and client, in any IdP session);
 * - the store cannot say (Redis down): unknown is not "none", and a
 *   grant no session holds lapses at the IdP by itself, where a revoked
 *   shared one signs a user out;
 * - its provider is gone, or a reload gave its name another client: its
 *   token goes to no one else.
 * Never throws: the sign-in goes on whatever is decided here.
 */
export async function replacedSession(
  request: FastifyRequest,
  login: LoginState,
  signedIn: LoginResult,
  { sessions, providers }: SignInDeps,
): Promise<Replaced | undefined> {
  const ref =
    sessions.refOf(request) ?? (login.heldKey === undefined ? undefined : sessions.refOfKey(login.heldKey))
  if (ref === undefined) return undefined
  const kept = (level: 'info' | 'warn', why: string, fields: Record<string, unknown> = {}) => {
    request.log[level](
      { session: sessionLogId(ref.id), ...fields },
      `session replaced by a new sign-in: its refresh token is not revoked, since ${why}`,
    )
    return { id: ref.id }
  }
  let old: SessionData | undefined
  try {
    old = await sessions.read(ref)
    const refreshToken = old?.tokens.refreshToken
    if (old === undefined || refreshToken === undefined) return { id: ref.id }
    const grant = { ...old, refreshToken }
    const verdict = await weighGrant(grant, signedIn, { sessions, providers })
    if ('kept' in verdict) return { id: ref.id, reweigh: { grant, signedIn } }
    return { id: ref.id, revoke: verdict.revoke }
  } catch (err) {
    const error = asGatehouseError(err)
    return kept(
      'warn',
      'the session store could not be read to say whether another session shares its grant',
      {
        ...(old === undefined ? {} : { idp: old.idp }),
        code: error.code,
        cause: causeName(error),
      },
    )
  }
}

/** A refresh token to revoke, and the provider that issued it. */
export interface Revocation {
  readonly oidc: OidcClient
  readonly refreshToken: string
}

/** Whether to revoke the grant of a session that is ending: the revocation, or why the grant is kept. */
export type GrantVerdict = { readonly revoke: Revocation } | { readonly kept: string }

/** What of a new session says which grants it may continue. */
export type GrantContinuer = Pick<SessionData, 'registration' | 'sid' | 'sub'>

/**
 * Whether the refresh token of `ending`, a session that no browser will
 * use again (one a sign-in replaces, or ends beyond `session.maxPerUser`,
 * or logged out), is revoked once `signedIn`, if any, is stored. It is
 * kept when the new session may continue its grant (`mayContinue`); when
 * another live session of
 * its user, at any frontend and in any IdP session, may share it; and
 * when its provider is gone, or a reload gave its
 * name another client: its token goes to no one else. Live means it can
 * still use the grant: not past its idle or absolute expiry, nor its
 * refresh token past the expiry the IdP said (`refresh_expires_in`), where
 * its store knows it (`SessionOfUser.refreshTokenExpiresAt`); one that is
 * can never refresh again and ends at its next request. Rejects when the
 * store cannot be read: unknown is not "none", and the caller keeps it.
 */
export async function weighGrant(
  ending: HeldGrant & { readonly id: string },
  signedIn: GrantContinuer | undefined,
  { sessions, providers }: SignInDeps,
): Promise<GrantVerdict> {
  const oidc = providers.ofSession(ending)
  if (oidc === undefined)
    return { kept: 'the identity provider that issued it is no longer configured as it was' }
  if (signedIn !== undefined && mayContinue(ending, oidc, signedIn))
    return { kept: 'the new session may continue its grant at the identity provider' }
  // By its user, not its IdP session: an IdP that names IdP sessions may
  // still revoke per user and client (Keycloak ends the client's sessions
  // of the user everywhere, Auth0 may delete the user's grant), so the
  // user's session in another IdP session would die with this token.
  const listed = await sessionsOfUserAtClient(
    sessions.store,
    providers,
    oidc.registration,
    ending.idp,
    ending.sub,
  )
  const now = sessions.now()
  if (listed.some((other) => other.id !== ending.id && (other.refreshTokenExpiresAt ?? Infinity) > now))
    return { kept: 'another session of its user may share its grant at the identity provider' }
  return { revoke: { oidc, refreshToken: ending.refreshToken } }
}

/** How the log lines of the grant of a session of the previous version begin. */
const PREVIOUS = 'session of the previous version ended'

/**
 * Gives back the grant of a session the previous version wrote, which
 * `Sessions` has just ended (at its cookie's first request since the
 * upgrade, a logout's too, or at a sign-in over that cookie: `signedIn`),
 * under the rules of any session that ends (`weighGrant`): until
 * 2026-12-07 its refresh token was revoked whatever live session shared
 * its grant, and that session's next refresh answered 401. Such a session
 * predates provider names and recorded registrations: it is the first
 * provider's, as the process started (`IdentityProviders.ofSession`).
 * Never throws: its record is gone whatever is decided here.
 */
export async function giveBackPrevious(
  request: FastifyRequest,
  ended: PreviousSession,
  signedIn: GrantContinuer | undefined,
  deps: SignInDeps,
): Promise<void> {
  const idp = deps.providers.default.name
  const fields = { session: sessionLogId(ended.id), idp }
  const kept = (why: string) =>
    request.log.info(fields, `${PREVIOUS}: its refresh token is not revoked, since ${why}`)
  // Every record that version wrote names its user; one that does not
  // cannot be weighed, and unknown is not "none".
  if (ended.sub === undefined)
    return kept('its record names no user to find the sessions sharing its grant by')
  let verdict: GrantVerdict
  try {
    verdict = await weighGrant(
      {
        id: ended.id,
        idp,
        registration: undefined,
        sub: ended.sub,
        sid: ended.sid,
        refreshToken: ended.refreshToken,
      },
      signedIn,
      deps,
    )
  } catch (err) {
    const error = asGatehouseError(err)
    request.log.warn(
      { ...fields, code: error.code, cause: causeName(error) },
      `${PREVIOUS}: its refresh token is not revoked, since the session store could not be read to say whether another session shares its grant`,
    )
    return
  }
  if ('kept' in verdict) return kept(verdict.kept)
  await revokeEnded(request, ended.id, verdict.revoke, PREVIOUS)
}

/**
 * Whether the new session may hold the grant of `old`, whose provider is
 * `oidc`, or lose its own with it: at the same client, for the same user,
 * or the same IdP session. oidc-provider gives a new IdP session a grant
 * of its own, but Keycloak's revocation of a refresh token ends the
 * client's sessions of the user in every IdP session, and Auth0's (with
 * "Refresh Token Revocation Deletes Grant") every refresh token of the
 * user at the client, though both name IdP sessions (`sid`); which kind an
 * IdP is cannot be told, and the same user's grant outliving its session
 * costs less than that user signed out of the session just made.
 */
function mayContinue(
  old: Pick<SessionData, 'sid' | 'sub'>,
  oidc: OidcClient,
  signedIn: GrantContinuer,
): boolean {
  if (!sameRegistration(oidc.registration, signedIn.registration)) return false
  return old.sub === signedIn.sub || (old.sid !== undefined && old.sid === signedIn.sid)
}

/**
 * Revokes the refresh token of the session a sign-in replaced, once the
 * new session is stored, as logout does: an IdP outage is logged and the
 * sign-in still lands, with the grant left to lapse. One kept for another
 * live session is weighed again first, now that the old session has
 * ended: that session may be ending at the same moment, replaced by
 * another sign-in, on this instance or another, and each of two weighed
 * before either ended saw the other live and kept its grant, so both
 * grants outlived both sessions. The sign-in that weighs last now sees
 * the other gone.
 */
export async function revokeReplaced(
  request: FastifyRequest,
  replaced: Replaced | undefined,
  deps: SignInDeps,
): Promise<void> {
  if (replaced === undefined) return
  let revoke = replaced.revoke
  if (replaced.reweigh !== undefined) {
    const why = 'session replaced by a new sign-in: its refresh token is not revoked, since'
    const fields = { session: sessionLogId(replaced.id), idp: replaced.reweigh.grant.idp }
    let verdict: GrantVerdict
    try {
      verdict = await weighGrant(replaced.reweigh.grant, replaced.reweigh.signedIn, deps)
    } catch (err) {
      const error = asGatehouseError(err)
      request.log.warn(
        { ...fields, code: error.code, cause: causeName(error) },
        `${why} the session store could not be read to say whether another session shares its grant`,
      )
      return
    }
    if ('kept' in verdict) {
      request.log.info(fields, `${why} ${verdict.kept}`)
      return
    }
    revoke = verdict.revoke
  }
  if (revoke === undefined) return
  await revokeEnded(request, replaced.id, revoke, 'session replaced by a new sign-in', deps.owedRevocations)
}

/**
 * Revokes the refresh token of session `id`, which a logout or a sign-in
 * ended; each line starts with `why` it ended. Never throws: the logout
 * or sign-in goes on whatever the IdP answers. One the IdP did not answer
 * is owed to it (`owed`), and revoked once it does: the session's record
 * was the only copy of the token.
 */
export async function revokeEnded(
  request: FastifyRequest,
  id: string,
  revoke: Revocation,
  why: string,
  owed?: OwedRevocations,
): Promise<void> {
  const fields = { session: sessionLogId(id), idp: revoke.oidc.name }
  try {
    if (await revoke.oidc.revoke(revoke.refreshToken))
      request.log.info(fields, `${why}: its refresh token was revoked`)
    else
      request.log.info(
        fields,
        `${why}: the identity provider offers no revocation endpoint, so its refresh token stays valid there until it expires`,
      )
  } catch (err) {
    const error = asGatehouseError(err)
    request.log.warn(
      { ...fields, code: error.code, cause: causeName(error) },
      `${why}: revoking its refresh token failed`,
    )
    if (unanswered(error)) owe(owed, revoke, request)
  }
}

/** Owes `revoke`, which the IdP did not answer, to be made once it does; without `owed`, the grant lapses. */
export function owe(owed: OwedRevocations | undefined, revoke: Revocation, request: FastifyRequest): void {
  owed?.add(
    { idp: revoke.oidc.name, registration: revoke.oidc.registration, refreshToken: revoke.refreshToken },
    request.log,
  )
}
