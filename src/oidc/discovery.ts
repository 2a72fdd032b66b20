import type { FastifyBaseLogger } from 'fastify'
import { causeName, type LogCode } from '../errors.js'
import type { OidcClient } from './client.js'
import { MAX_RETRY_AFTER } from './retry-after.js'
import { idpFailureOf } from './translate.js'

export interface Discovery {
  /** Resolves once discovery has succeeded. */
  readonly ready: Promise<void>
  stop(): void
}

/**
 * Discovers the IdP in the background and keeps trying, with capped
 * exponential backoff, until it works: an IdP that starts after the
 * gateway, or is briefly down, must not take the gateway down with it.
 */
export function discoverWithRetry(
  oidc: OidcClient,
  log: FastifyBaseLogger,
  { initialDelay = 500, maxDelay = 30_000 } = {},
): Discovery {
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  let resolveReady!: () => void
  const ready = new Promise<void>((resolve) => {
    resolveReady = resolve
  })

  const attempt = async (delay: number): Promise<void> => {
    try {
      await oidc.discover()
      log.info({ issuer: oidc.issuer }, 'OpenID Provider discovered')
      reportDiscovered(oidc, log)
      resolveReady()
    } catch (err) {
      if (stopped) return
      // An IdP's own Retry-After (RFC 9110 §10.2.3), when it asks for
      // longer than the backoff would wait: one starting up or shedding
      // load said when. Bounded as every one it sends is (retry-after.ts).
      const asked = idpFailureOf(err)?.retryAfter
      const wait = asked === undefined ? delay : Math.max(delay, Math.min(asked, MAX_RETRY_AFTER) * 1_000)
      log.error(
        {
          url: new URL(
            '.well-known/openid-configuration',
            oidc.issuer.endsWith('/') ? oidc.issuer : `${oidc.issuer}/`,
          ).href,
          reason: causeName(err as Error) ?? (err as Error).message,
          retryInMs: wait,
        },
        'OpenID Provider discovery failed; retrying',
      )
      timer = setTimeout(() => void attempt(Math.min(delay * 2, maxDelay)), wait)
      timer.unref()
    }
  }
  void attempt(initialDelay)

  return {
    ready,
    stop() {
      stopped = true
      clearTimeout(timer)
    },
  }
}

/**
 * What a discovered document lacks or gets wrong that the operator should
 * know of: said at each discovery, and at each rediscovery that changed it.
 */
export function reportDiscovered(oidc: OidcClient, log: FastifyBaseLogger): void {
  // What the profile's checks then report as not advertised was advertised wrongly: say which.
  for (const reason of oidc.misadvertised)
    log.warn(
      { issuer: oidc.issuer, reason },
      'the identity provider advertises a discovery member of the wrong shape',
    )
  const clientAuth = oidc.unadvertisedClientAuth
  if (clientAuth) {
    const code: LogCode = 'GATEHOUSE_CLIENT_AUTH_NOT_ADVERTISED'
    log.warn(
      {
        code,
        issuer: oidc.issuer,
        option: clientAuth.option,
        clientAuth: clientAuth.method,
        advertised: clientAuth.advertised,
      },
      clientAuth.message,
    )
  }
  if (!oidc.metadata?.jwks_uri) {
    log.warn(
      { issuer: oidc.issuer },
      'the identity provider advertises no jwks_uri (OpenID Connect Discovery 1.0 §3 requires one): sign-in works, but back-channel logout tokens cannot be verified and are answered 503 idp_incompatible',
    )
  }
  if (!oidc.metadata?.id_token_signing_alg_values_supported) {
    // oauth4webapi then takes OIDC Core §3.1.3.7's default alone: an
    // IdP that signs otherwise fails every sign-in (unexpected-alg.ts).
    log.warn(
      { issuer: oidc.issuer },
      'the identity provider advertises no id_token_signing_alg_values_supported (OpenID Connect Discovery 1.0 §3 requires it): ID tokens are accepted only signed RS256 (OIDC Core §3.1.3.7), and every sign-in fails if it signs them otherwise',
    )
  }
  if (!oidc.metadata?.revocation_endpoint) {
    log.info(
      { issuer: oidc.issuer },
      'the identity provider advertises no revocation_endpoint (RFC 7009): logout ends the session here and at the provider, but cannot revoke the refresh token, which stays valid until it expires',
    )
  }
}
