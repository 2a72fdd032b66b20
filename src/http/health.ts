import type { FastifyInstance } from 'fastify'
import { HEALTH_PATHS } from '../config/own-paths.js'
import { type ErrorCode, retryAfterOf } from '../errors.js'
import type { OidcClient } from '../oidc/client.js'
import type { ClientRefusals } from '../oidc/client-refusals.js'
import type { SessionStore, StoreRefusalReport } from '../session/types.js'
import { SingleFlight } from '../tokens/single-flight.js'

/** One readiness check that failed: what the catalogue calls it, and why, for operators. */
export interface ReadinessFailure {
  readonly code: ErrorCode
  readonly detail: string
  /**
   * Reported, but the instance stays in rotation (`status: degraded`, 200):
   * for a fault every instance shares, where taking them all out would
   * only hide the clear error page behind a load balancer's.
   */
  readonly degraded?: boolean
}

/** What readiness asks: each provider's client, the session store, and the IdPs' refusals of our credentials. */
export interface ReadinessSources {
  readonly providers: {
    readonly all: readonly Pick<OidcClient, 'name' | 'discovered' | 'discoveryRefusal' | 'incompatibility'>[]
  }
  readonly store: Pick<SessionStore, 'ping' | 'refusals'>
  readonly refusals: Pick<ClientRefusals, 'detail'>
}

/** One entry per check: `ok`, or the failure that keeps this instance out of rotation. */
async function check(
  { providers, store, refusals }: ReadinessSources,
  pings: SingleFlight<readonly StoreRefusalReport[]>,
): Promise<Record<string, 'ok' | ReadinessFailure>> {
  const idps = providers.all.map((oidc): ['ok' | ReadinessFailure, string] => [
    !oidc.discovered
      ? {
          code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE',
          // Which member of its document the IdP must fix, when that is why.
          detail:
            oidc.discoveryRefusal === undefined
              ? 'not discovered'
              : `not discovered: ${oidc.discoveryRefusal}`,
        }
      : oidc.incompatibility === undefined
        ? 'ok'
        : { code: 'GATEHOUSE_ERR_IDP_INCOMPATIBLE', detail: oidc.incompatibility },
    oidc.name,
  ])
  // One provider: `idp`, as ever. Several: `idp:<name>` each; one that
  // fails costs only its own sessions, so the instance stays in rotation
  // (degraded) while any provider works.
  const anyWorks = idps.some(([result]) => result === 'ok')
  const idp: Record<string, 'ok' | ReadinessFailure> =
    idps.length === 1
      ? { idp: idps[0]![0] }
      : Object.fromEntries(
          idps.map(([result, name]) => [
            `idp:${name}`,
            result === 'ok' || !anyWorks ? result : { ...result, degraded: true },
          ]),
        )
  let reachable: 'ok' | ReadinessFailure = 'ok'
  try {
    // /readyz is public: requests that arrive while a PING and its
    // refusal check are out share them, and the refusal check, which
    // writes, serves for a second after (refusals.ts), so a flood of them,
    // concurrent or one after another, is no flood of writes to the store.
    const refused = await pings.run('store', async () => {
      await store.ping()
      return (await store.refusals?.()) ?? []
    })
    // A store that answers PING may still refuse what requests need: its
    // ACL the scripts every write is, or the keys they write (not ready:
    // the gateway cannot work, and a rollout that brought the ACL halts),
    // or writes for being full or short of replicas (degraded: reads still
    // serve, and every instance shares the store).
    if (refused.length > 0)
      reachable = {
        code: 'GATEHOUSE_ERR_STORE_UNAVAILABLE',
        detail: refused.map((r) => r.detail).join('; '),
        ...(refused.every((r) => r.degraded) ? { degraded: true } : {}),
      }
  } catch (err) {
    reachable = { code: 'GATEHOUSE_ERR_STORE_UNAVAILABLE', detail: (err as Error).message }
  }
  const refused = refusals.detail
  const clientAuth: 'ok' | ReadinessFailure =
    refused === undefined
      ? 'ok'
      : { code: 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED', detail: refused, degraded: true }
  return { ...idp, store: reachable, clientAuth }
}

/** Liveness says the process runs; readiness says it can do its job. */
export async function healthRoutes(app: FastifyInstance, sources: ReadinessSources) {
  const pings = new SingleFlight<readonly StoreRefusalReport[]>()
  app.get(HEALTH_PATHS.liveness, { config: { renders: 'json' } }, async (_request, reply) =>
    reply.send({ status: 'ok' }),
  )
  app.get(HEALTH_PATHS.readiness, { config: { renders: 'json' } }, async (_request, reply) => {
    const results = await check(sources, pings)
    const checks: Record<string, string> = {}
    // A load balancer that honours Retry-After should come back when the
    // slowest failing part is expected back, so the longest catalogue value
    // wins (an incompatible IdP waits for a config change, a store blip doesn't).
    let retryAfter: number | undefined
    let degraded = false
    for (const [name, result] of Object.entries(results)) {
      if (result === 'ok') {
        checks[name] = 'ok'
        continue
      }
      checks[name] = result.detail
      if (result.degraded) degraded = true
      else retryAfter = Math.max(retryAfter ?? 0, retryAfterOf(result.code) ?? 0)
    }
    if (retryAfter !== undefined) reply.code(503).header('retry-after', String(retryAfter))
    const status = retryAfter !== undefined ? 'not_ready' : degraded ? 'degraded' : 'ready'
    return reply.send({ status, checks })
  })
}
