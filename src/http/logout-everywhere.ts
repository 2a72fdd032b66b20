import type { FastifyInstance } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { gatehouseError } from '../errors.js'
import { type AntiForgeryConfig, csrfCheck } from '../guards/csrf.js'
import type { OidcClient } from '../oidc/client.js'
import type { Sessions } from '../session/sessions.js'

export interface LogoutEverywhereDeps {
  readonly config: AntiForgeryConfig & { readonly auth: Pick<GatehouseConfig['auth'], 'basePath'> }
  readonly oidc: OidcClient
  readonly sessions: Sessions
}

/** "Log out everywhere": ends every session of the current user, at `{basePath}/logout-everywhere`. */
export async function logoutEverywhereRoute(app: FastifyInstance, deps: LogoutEverywhereDeps) {
  const { config, oidc, sessions } = deps
  const base = config.auth.basePath
  const checkCsrf = csrfCheck(config)

  app.post(`${base}/logout-everywhere`, { config: { renders: 'json' } }, async (request, reply) => {
    checkCsrf(request)
    const session = await sessions.current(request)
    if (!session) throw gatehouseError('GATEHOUSE_ERR_UNAUTHENTICATED')
    const ids = await sessions.store.idsBySub(session.sub)
    for (const id of ids) await sessions.store.delete(id)
    if (session.tokens.refreshToken) {
      await oidc.revoke(session.tokens.refreshToken).catch((err: { code?: string }) => {
        request.log.warn({ code: err.code }, 'refresh token revocation failed')
      })
    }
    request.session.delete()
    return reply.send({ ended: ids.length })
  })
}
