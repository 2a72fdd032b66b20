/**
 * `session.maxPerUser`: a bound on one user's sessions. Each sign-in makes
 * a session record, with a refresh token, in the store; without a bound a
 * user with valid credentials who signs in again and again (a script, a
 * client that never keeps its cookie) adds one record per sign-in, and
 * only the per-address sign-in rate limit and the idle timeout slow it.
 *
 * Whose sessions count together: one user, a `sub` of one issuer and
 * client id (OIDC Core §2: a `sub` is unique only within its issuer; a
 * client's pairwise `sub`s name other users), under every provider entry
 * with that registration, as "log out everywhere" finds them; at one
 * frontend, since each is an application with its own cookie and a
 * sign-in at one must not end the user's session at another (so a user
 * holds at most the bound at each, and the frontends are few); and over
 * every instance that shares the store. The memory store is one
 * instance's, and so is its bound.
 *
 * Which end: first any whose refresh token has expired by the expiry the
 * IdP said (`refresh_expires_in`): it can never refresh again and ends at
 * its next request, and ending an older one in its place signed its user
 * out of a browser still in use. Then the oldest by creation time (then by
 * id), as Keycloak and Duende BFF end them. The order is read from each
 * record's creation time, never the index score (its absolute expiry),
 * which a reload of `session.absoluteTimeout` would turn around: a
 * sign-in just after a reload that shortened it would have ended its own
 * new session.
 *
 * Race-free without a lock: every sign-in lists its user's sessions once
 * its own record and index entries are written, and ends the oldest
 * beyond the bound of those it saw. Of sign-ins at once on any instances,
 * the one that lists last sees the record of every other (each wrote
 * before it listed), so once all are done at most the bound are left. A
 * session that can still refresh is ended only by a sign-in that saw at
 * least `maxPerUser` of its user's sessions made after it; an index
 * member whose record is not written yet counts as none and is left
 * alone, so another sign-in's new session is never ended for being half
 * made. Two sign-ins that end the same session delete it twice, and the
 * one whose delete removed the record counts it, logs it and weighs its grant. Each step reads or
 * writes one key (each index, then each record), so it runs on a Redis
 * Cluster, whose indexes and records are on several masters.
 *
 * How they end: as a logout ends them. The record and its index entries go
 * (`Sessions.endAll`), so its WebSockets close with 4401 at their next
 * check and its DPoP key leaves this process. Its refresh token is revoked
 * (RFC 7009) under the rules for the session a sign-in replaces
 * (`weighGrant`: not while a session may share its grant), where the
 * store holds it unsealed: the memory store. In Redis it is sealed with
 * a key only the session's own cookie carries (docs/security.md), so no
 * sign-in in another browser can read it: it is not revoked, and its
 * grant lapses at the IdP as that of a session that idles out does.
 *
 * A store that cannot answer leaves the sign-in as it is: a warning, a
 * count, and the user's next sign-in ends what is over the bound.
 */
import type { FastifyRequest } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { causeName, type LogCode } from '../errors.js'
import type { IdentityProviders } from '../oidc/providers.js'
import { sessionLogId } from '../session/log-id.js'
import type { Sessions } from '../session/sessions.js'
import type { SessionData, SessionOfUser } from '../session/types.js'
import type { OwedRevocations } from './owed-revocations.js'
import { type ListedSession, sessionsOfUserAtClient } from './sessions-of-client.js'
import { asGatehouseError, revokeEnded, weighGrant } from './sign-in-grants.js'

/** What the bound reads: its value, the frontend's sessions and the providers. */
export interface PerUserDeps {
  readonly config: { readonly session: Pick<GatehouseConfig['session'], 'maxPerUser'> }
  readonly sessions: Sessions
  readonly providers: IdentityProviders
  /** Told of each session ended beyond the bound, and of each sign-in that could not check it. */
  readonly onOverBound?: ((result: 'ended' | 'unchecked', idp: string) => void) | undefined
  /** Where a revocation the IdP did not answer is owed, to be made once it does. */
  readonly owedRevocations?: OwedRevocations | undefined
}

/** How the log lines of a session ended here begin. */
const ENDED = 'session ended beyond session.maxPerUser'

/**
 * Ends the oldest sessions of the user of `made`, a session a sign-in has
 * just stored, beyond `session.maxPerUser` at this frontend. Never throws:
 * the sign-in goes on whatever happens here.
 */
export async function endSessionsOverBound(
  request: FastifyRequest,
  made: SessionData,
  deps: PerUserDeps,
): Promise<void> {
  const max = deps.config.session.maxPerUser
  let over: readonly ListedSession[]
  const now = deps.sessions.now()
  try {
    const oldest = oldestBeyond(await sessionsOfUser(made, deps), max, now)
    if (oldest.length === 0) return
    // Another sign-in may have ended some of them a moment ago: that one
    // counts them, logs them and weighs their grants.
    const ended = new Set(await deps.sessions.endAll(oldest.map((session) => session.id)))
    over = oldest.filter((session) => ended.has(session.id))
  } catch (err) {
    const error = asGatehouseError(err)
    const code: LogCode = 'GATEHOUSE_SESSION_BOUND_UNCHECKED'
    request.log.warn(
      { code, idp: made.idp, error: error.code, cause: causeName(error) },
      `sign-in could not check session.maxPerUser (${max}): the session store did not answer; the user's next sign-in ends what is over it`,
    )
    deps.onOverBound?.('unchecked', made.idp)
    return
  }
  const sealed = deps.sessions.store.kind !== 'memory'
  for (const ended of over) {
    const code: LogCode = 'GATEHOUSE_SESSION_OVER_BOUND'
    const refreshExpired = cannotRefresh(ended, now)
    const why = refreshExpired ? 'its refresh token had expired (refresh_expires_in)' : 'it was the oldest'
    request.log.info(
      {
        code,
        session: sessionLogId(ended.id),
        idp: ended.idp,
        maxPerUser: max,
        own: ended.id === made.id,
        ...(refreshExpired ? { refreshExpired } : {}),
      },
      sealed
        ? `${ENDED}: its user signed in once more and ${why}; its refresh token is sealed with a key only its own cookie carries, so it is not revoked and its grant lapses at the identity provider`
        : `${ENDED}: its user signed in once more and ${why}`,
    )
    deps.onOverBound?.('ended', ended.idp)
  }
  // Weighed once all have ended: one that is over shares no grant.
  for (const ended of over) await giveBackGrant(request, ended, made, deps)
}

/** Its refresh token is known to have expired by `now`, as `Sessions.current` and `weighGrant` read it. */
function cannotRefresh(session: SessionOfUser, now: number): boolean {
  return (session.refreshTokenExpiresAt ?? Number.POSITIVE_INFINITY) <= now
}

/**
 * The sessions of `sessions` beyond the first `max` to end, first to end
 * first: those whose refresh token is known to have expired by `now`
 * (`SessionOfUser.refreshTokenExpiresAt`), which can never refresh again
 * and end at their next request anyway, then the oldest; each by creation
 * time, then by id, so every instance orders a user's sessions alike,
 * those made in the same millisecond too. One that can still refresh is
 * ended only where creation time alone would end it, on whichever side of
 * another's expiry an instance's clock reads.
 */
export function oldestBeyond<T extends SessionOfUser>(sessions: readonly T[], max: number, now: number): T[] {
  if (sessions.length <= max) return []
  const rank = (s: SessionOfUser) => (cannotRefresh(s, now) ? 0 : 1)
  const ordered = [...sessions].sort(
    (a, b) => rank(a) - rank(b) || a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  )
  return ordered.slice(0, sessions.length - max)
}

/**
 * The live sessions of `made`'s user at this frontend: under each provider
 * name that has or had its registration (`IdentityProviders.namesOf`),
 * only those that registration issued, as `sessionsOfClient` finds them.
 */
async function sessionsOfUser(
  made: SessionData,
  { sessions, providers }: PerUserDeps,
): Promise<ListedSession[]> {
  const listed = await sessionsOfUserAtClient(
    sessions.store,
    providers,
    providers.registrationOf(made),
    made.idp,
    made.sub,
  )
  return listed.filter((session) => sessions.owns(session.id))
}

/** Revokes the grant of a session ended here, where the store could read it, unless a session may share it. */
async function giveBackGrant(
  request: FastifyRequest,
  ended: ListedSession,
  made: SessionData,
  deps: PerUserDeps,
): Promise<void> {
  if (ended.grant === undefined || ended.id === made.id) return
  const fields = { session: sessionLogId(ended.id), idp: ended.grant.idp }
  let verdict: Awaited<ReturnType<typeof weighGrant>>
  try {
    verdict = await weighGrant({ ...ended.grant, id: ended.id }, made, deps)
  } catch (err) {
    const error = asGatehouseError(err)
    request.log.warn(
      { ...fields, code: error.code, cause: causeName(error) },
      `${ENDED}: its refresh token is not revoked, since the session store could not be read to say whether another session shares its grant`,
    )
    return
  }
  if ('kept' in verdict) {
    request.log.info(fields, `${ENDED}: its refresh token is not revoked, since ${verdict.kept}`)
    return
  }
  await revokeEnded(request, ended.id, verdict.revoke, ENDED, deps.owedRevocations)
}
