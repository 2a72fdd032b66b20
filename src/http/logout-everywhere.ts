import type { FastifyInstance } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { gatehouseError } from '../errors.js'
import { type AntiForgeryConfig, csrfCheck } from '../guards/csrf.js'
import { type IdentityProviders, sameRegistration } from '../oidc/providers.js'
import type { Sessions } from '../session/sessions.js'

export interface LogoutEverywhereDeps {
  readonly config: AntiForgeryConfig & { readonly auth: Pick<GatehouseConfig['auth'], 'basePath'> }
  readonly providers: IdentityProviders
  readonly sessions: Sessions
}

/** "Log out everywhere": ends every session of the current user, at `{basePath}/logout-everywhere`. */
export async function logoutEverywhereRoute(app: FastifyInstance, deps: LogoutEverywhereDeps) {
  const { config, providers, sessions } = deps
  const base = config.auth.basePath
  const checkCsrf = csrfCheck(config)

  app.post(`${base}/logout-everywhere`, { config: { renders: 'json' } }, async (request, reply) => {
    checkCsrf(request)
    const session = await sessions.current(request)
    if (!session) throw gatehouseError('GATEHOUSE_ERR_UNAUTHENTICATED')
    // The user's sessions at this session's provider: the same sub at another
    // is another user, and so it is at the issuer or client id a reload may
    // since have given the provider's name.
    const mine = providers.registrationOf(session)
    const ids = await sessions.store.idsBySub(session.sub, session.idp, (registration) =>
      sameRegistration(providers.registrationOf({ idp: session.idp, registration }), mine),
    )
    for (const id of ids) await sessions.store.delete(id)
    // Not to a provider a reload pointed elsewhere: the token is not its.
    const oidc = providers.ofSession(session)
    if (oidc && session.tokens.refreshToken) {
      await oidc.revoke(session.tokens.refreshToken).catch((err: { code?: string }) => {
        request.log.warn({ code: err.code }, 'refresh token revocation failed')
      })
    }
    request.session.delete()
    return reply.send({ ended: ids.length })
  })
}
