import type { FastifyInstance } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { causeName, gatehouseError } from '../errors.js'
import { type AntiForgeryConfig, csrfCheck } from '../guards/csrf.js'
import type { IdentityProviders } from '../oidc/providers.js'
import type { Sessions } from '../session/sessions.js'
import { type OwedRevocations, unanswered } from './owed-revocations.js'
import { sessionsOfClient } from './sessions-of-client.js'
import { asGatehouseError, owe } from './sign-in-grants.js'

export interface LogoutEverywhereDeps {
  readonly config: AntiForgeryConfig & { readonly auth: Pick<GatehouseConfig['auth'], 'basePath'> }
  readonly providers: IdentityProviders
  readonly sessions: Sessions
  /** Where a revocation the IdP did not answer is owed, to be made once it does (server/lasting.ts). */
  readonly owedRevocations?: OwedRevocations | undefined
}

/**
 * "Log out everywhere": ends every session of the current user, at
 * `{basePath}/logout-everywhere`: those of the issuer and client id the
 * current session signed in at, in every frontend and under every
 * provider entry that shares them.
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
    await sessions.endAll(ids.filter((id) => id !== session.id))
    await sessions.end(session.id)
    // Not to a provider a reload pointed elsewhere: the token is not its.
    const oidc = providers.ofSession(session)
    const refreshToken = session.tokens.refreshToken
    if (oidc && refreshToken) {
      await oidc.revoke(refreshToken).catch((err: unknown) => {
        const error = asGatehouseError(err)
        request.log.warn({ code: error.code, cause: causeName(error) }, 'refresh token revocation failed')
        // Every session that held it has ended: the revocation is owed.
        if (unanswered(error)) owe(deps.owedRevocations, { oidc, refreshToken }, request)
      })
    }
    request.session.delete()
    return reply.send({ ended: ids.length })
  })
}
