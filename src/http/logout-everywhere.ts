import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { causeName, gatehouseError } from '../errors.js'
import { type AntiForgeryConfig, csrfCheck } from '../guards/csrf.js'
import type { IdentityProviders } from '../oidc/providers.js'
import type { Sessions } from '../session/sessions.js'
import type { SessionData } from '../session/types.js'
import { type OwedRevocations, unanswered } from './owed-revocations.js'
import { sessionsOfClient } from './sessions-of-client.js'
import { asGatehouseError, owe, type Revocation } from './sign-in-grants.js'

export interface LogoutEverywhereDeps {
  readonly config: AntiForgeryConfig & { readonly auth: Pick<GatehouseConfig['auth'], 'basePath'> }
  readonly providers: IdentityProviders
  readonly sessions: Sessions
  /** Where a revocation the IdP did not answer is owed, to be made once it does (server/lasting.ts). */
  readonly owedRevocations?: OwedRevocations | undefined
}

/**
 * How many of its refresh tokens "log out everywhere" revokes at once: a
 * user may hold `session.maxPerUser` sessions at each frontend, and one
 * request must not open as many calls to the IdP.
 */
const REVOKE_AT_ONCE = 4

/**
 * "Log out everywhere": ends every session of the current user, at
 * `{basePath}/logout-everywhere`: those of the issuer and client id the
 * current session signed in at, in every frontend and under every
 * provider entry that shares them. Revokes the refresh token of each it
 * ends (RFC 7009) where the store holds it in the clear (`SessionStore.take`).
 */
export async function logoutEverywhereRoute(app: FastifyInstance, deps: LogoutEverywhereDeps) {
  const { config, providers, sessions } = deps
  const base = config.auth.basePath
  const checkCsrf = csrfCheck(config)

  app.post(`${base}/logout-everywhere`, { config: { renders: 'json' } }, async (request, reply) => {
    checkCsrf(request)
    const session = await sessions.current(request)
    if (!session) throw gatehouseError('GATEHOUSE_ERR_UNAUTHENTICATED')
    // The user's sessions of the issuer and client id this session's tokens
    // came from, whichever provider entry signed them in: the same sub at
    // another issuer or client is another user, and so it is at the one a
    // reload may since have given the provider's name.
    const ids = await sessionsOfClient(
      sessions.store,
      providers,
      providers.registrationOf(session),
      session.idp,
      {
        sub: session.sub,
      },
    )
    // The request's own session last: ended with the others, a store
    // failing part way would leave the user signed out here, unable to ask
    // again, with the sessions it did not reach still running.
    const others = await sessions.takeAll(ids.filter((id) => id !== session.id))
    await sessions.end(session.id)
    // Every session that held one of these grants has ended, so none is
    // weighed (sign-in-grants.ts): oidc-provider gives each browser's IdP
    // session a grant of its own, and the user asking fears for them all.
    const revocations = new Map<string, Revocation>()
    const revoke = (
      grant: Pick<SessionData, 'idp' | 'registration'> & { refreshToken?: string | undefined },
    ) => {
      // Not to a provider a reload pointed elsewhere: the token is not its.
      const oidc = providers.ofSession(grant)
      const { refreshToken } = grant
      if (oidc && refreshToken && !revocations.has(refreshToken))
        revocations.set(refreshToken, { oidc, refreshToken })
    }
    revoke({ ...session, refreshToken: session.tokens.refreshToken })
    for (const other of others) if (other.grant) revoke(other.grant)
    const sealed = others.filter((other) => other.grant === undefined).length
    if (sessions.store.kind !== 'memory' && sealed > 0)
      request.log.info(
        { idp: session.idp, sessions: sealed },
        `log out everywhere: the refresh tokens of the other sessions it ended (${sealed}) are not revoked: each is sealed with a key only its own cookie carries, so their grants lapse at the identity provider`,
      )
    await revokeEvery(request, [...revocations.values()], deps.owedRevocations)
    request.session.delete()
    return reply.send({ ended: ids.length })
  })
}

/**
 * Revokes each of `revocations`, REVOKE_AT_ONCE at a time, all within the
 * longest `timeout` of their providers, as the asking session's alone was:
 * the user waits on the answer, and an IdP that held every call open would
 * otherwise hold it a timeout per REVOKE_AT_ONCE tokens. One the IdP did
 * not answer, in that time or at all, is owed: its session's record, the
 * token's only copy, is gone. Never throws: the sessions have ended.
 */
async function revokeEvery(
  request: FastifyRequest,
  revocations: readonly Revocation[],
  owed: OwedRevocations | undefined,
): Promise<void> {
  if (revocations.length === 0) return
  const stop = AbortSignal.timeout(Math.max(...revocations.map(({ oidc }) => oidc.timeout)))
  let next = 0
  const revokeInTurn = async () => {
    for (let revoke = revocations[next++]; revoke !== undefined; revoke = revocations[next++]) {
      if (stop.aborted) {
        owe(owed, revoke, request)
        continue
      }
      try {
        await revoke.oidc.revoke(revoke.refreshToken, stop)
      } catch (err) {
        const error = asGatehouseError(err)
        request.log.warn(
          { idp: revoke.oidc.name, code: error.code, cause: causeName(error) },
          'refresh token revocation failed',
        )
        if (unanswered(error)) owe(owed, revoke, request)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(REVOKE_AT_ONCE, revocations.length) }, revokeInTurn))
}
