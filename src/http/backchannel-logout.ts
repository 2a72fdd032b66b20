import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { gatehouseError } from '../errors.js'
import type { OidcClient } from '../oidc/client.js'
import { LogoutTokenVerifier } from '../oidc/logout-token.js'
import type { Sessions } from '../session/sessions.js'
import type { ReplayCache } from '../tokens/types.js'

export interface BackchannelLogoutDeps {
  readonly config: {
    readonly auth: Pick<GatehouseConfig['auth'], 'basePath'>
    readonly oidc: Pick<GatehouseConfig['oidc'], 'timeout'>
  }
  readonly oidc: OidcClient
  readonly sessions: Sessions
  readonly replay: ReplayCache
  readonly now: () => number
}

/** How long a logout token's `jti` is remembered: past its acceptable age, plus skew. */
const JTI_TTL_MS = 5 * 60_000

/** OpenID Connect Back-Channel Logout 1.0 at `{basePath}/backchannel-logout`. */
export async function backchannelLogoutRoute(app: FastifyInstance, deps: BackchannelLogoutDeps) {
  const { config, oidc, sessions, replay } = deps
  const base = config.auth.basePath
  let verifier: LogoutTokenVerifier | undefined

  // The IdP posts a form (§2.5); only this scope parses one, with a small limit.
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 16 * 1024 },
    (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
  )

  app.post(
    `${base}/backchannel-logout`,
    { config: { renders: 'json' } },
    async (request: FastifyRequest<{ Body: { logout_token?: unknown } }>, reply) => {
      const token = request.body?.logout_token
      if (typeof token !== 'string' || token === '')
        throw gatehouseError('GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN', 'logout_token is missing.')
      const metadata = oidc.metadata
      if (!metadata?.jwks_uri) throw gatehouseError('GATEHOUSE_ERR_IDP_UNAVAILABLE')
      verifier ??= new LogoutTokenVerifier({
        jwksUri: metadata.jwks_uri,
        issuer: metadata.issuer,
        clientId: oidc.clientId,
        timeoutMs: config.oidc.timeout,
        now: deps.now,
      })
      const claims = await verifier.verify(token)
      if (!(await replay.firstSeen(`jti:${claims.jti}`, JTI_TTL_MS))) {
        throw gatehouseError('GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN', 'The logout token was already used.')
      }
      // §2.7: with a sid, end that IdP session's sessions; with only a sub, all of the user's.
      const ids = claims.sid
        ? await sessions.store.idsBySid(claims.sid)
        : await sessions.store.idsBySub(claims.sub!)
      for (const id of ids) await sessions.store.delete(id)
      request.log.info({ ended: ids.length }, 'back-channel logout')
      return reply.code(200).send({ ended: ids.length })
    },
  )
}
