import type { FastifyBaseLogger } from 'fastify'
import type { IdentityProviderConfig } from '../config/types.js'
import type { ErrorCode, LogCode } from '../errors.js'
import type { IdpOperation } from '../oidc/answers.js'
import type { OidcObserver } from '../oidc/client.js'
import { refusalHint } from '../oidc/client-auth.js'
import type { ClientRefusals } from '../oidc/client-refusals.js'
import { ASSUMED_LIFETIME } from '../oidc/token-lifetime.js'
import { failureFields } from '../oidc/translate.js'
import { RepeatedLines, repeatedField } from '../repeated-lines.js'
import type { GatewayMetrics } from './metrics.js'

/** The grant each token-endpoint operation uses, for the unauthorized_client hint. */
const GRANTS: Partial<Record<IdpOperation, string>> = {
  code_exchange: 'authorization_code',
  refresh: 'refresh_token',
  route_refresh: 'refresh_token',
  unbound_route_refresh: 'refresh_token',
  client_credentials: 'client_credentials',
}

/**
 * What the gateway does with the IdP's answers beyond each call's own
 * error: a refusal of its own credentials is a configuration error, so it
 * is logged at `error` with what to check, counted, and shown on `/readyz`
 * until the IdP accepts them again.
 */
export function idpObserver(
  provider: IdentityProviderConfig,
  log: FastifyBaseLogger,
  metrics: GatewayMetrics,
  refusals: ClientRefusals,
): OidcObserver {
  const assumed = new Set<IdpOperation>()
  // Every session's refresh may meet the same oversized token: one line a
  // minute per kind of call and token tells it (the refresh lines go on).
  const tooLarge = new RepeatedLines()
  const issuedAhead = new RepeatedLines()
  return {
    failed(failure) {
      if (failure.issuedAhead !== undefined) {
        const { seconds, tolerance } = failure.issuedAhead
        const held = issuedAhead.admit(failure.operation)
        const code: LogCode = 'GATEHOUSE_ID_TOKEN_ISSUED_AHEAD'
        if (held !== undefined)
          log.warn(
            {
              code,
              operation: failure.operation,
              idp: provider.name,
              idTokenIssuedAhead: seconds,
              clockTolerance: tolerance,
              ...repeatedField(held),
            },
            `the identity provider issued an ID token dated (iat) ${seconds} s ahead of this host's clock, more than the ${tolerance} s the two may differ by: its answer was refused and nothing of it kept. Set both clocks right (NTP) on this host and at the identity provider`,
          )
        return
      }
      if (failure.tooLarge !== undefined) {
        const { token, bytes, limit } = failure.tooLarge
        const held = tooLarge.admit(`${failure.operation} ${token}`)
        const code: LogCode = 'GATEHOUSE_TOKEN_TOO_LARGE'
        if (held !== undefined)
          log.warn(
            {
              code,
              operation: failure.operation,
              idp: provider.name,
              token,
              tokenBytes: bytes,
              maxTokenSize: limit,
              ...repeatedField(held),
            },
            `the identity provider issued a token of ${bytes} bytes (${token}), over tokens.maxSize (${limit}): its answer was refused and nothing of it kept. Upstreams take an access token only in a header (nginx 8 KiB per line, Node.js 16 KiB for the whole head, Envoy 60 KiB): have the identity provider issue smaller ones (fewer groups or roles in them), or raise tokens.maxSize if every upstream takes the size`,
          )
        return
      }
      // A route's client-credentials token refused: no refresh or exchange
      // line tells of it, and it is the config's or the IdP's to fix.
      if (failure.operation === 'client_credentials' && failure.verdict === 'route_refused') {
        const code: ErrorCode = 'GATEHOUSE_ERR_CLIENT_TOKEN_REFUSED'
        log.warn(
          { code, operation: failure.operation, idp: provider.name, ...failureFields(failure) },
          `the identity provider refused the client-credentials token for a route's scopes (${failure.oauthError ?? failure.reason})`,
        )
        return
      }
      if (failure.verdict !== 'client_refused') return
      refusals.refused(provider.name, failure)
      metrics.idpClientRefusals.inc({
        operation: failure.operation,
        answer: failure.answer,
        idp: provider.name,
      })
      metrics.idpClientRefused.set(1)
      const hint = refusalHint(provider, failure.answer, GRANTS[failure.operation], failure.tlsAlert)
      const code: ErrorCode = 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED'
      log.error(
        {
          code,
          operation: failure.operation,
          idp: provider.name,
          clientId: provider.clientId,
          clientAuth: provider.clientAuth,
          reason: failure.reason,
          ...(failure.oauthError ? { oauthError: failure.oauthError } : {}),
          ...(failure.description ? { oauthErrorDescription: failure.description } : {}),
          ...(failure.tlsAlert ? { tlsAlert: failure.tlsAlert } : {}),
          hint,
        },
        `the identity provider refused the gateway's client credentials (${failure.reason}): ${hint}`,
      )
    },
    accepted(operation) {
      if (!refusals.accepted(provider.name, operation)) return
      metrics.idpClientRefused.set(refusals.any ? 1 : 0)
      log.info(
        { operation, idp: provider.name },
        "the identity provider accepts the gateway's client credentials again",
      )
    },
    lifetimeAssumed(operation) {
      // Once per kind of call: the same IdP answers every token the same way.
      if (assumed.has(operation)) return
      assumed.add(operation)
      const code: LogCode = 'GATEHOUSE_TOKEN_LIFETIME_ASSUMED'
      log.warn(
        { code, operation, assumedSeconds: ASSUMED_LIFETIME },
        `the identity provider's token response has no expires_in (RFC 6749 §5.1) and the access token is not a JWT with an exp after its iat: it is taken to live ${ASSUMED_LIFETIME} s and refreshed before then`,
      )
    },
  }
}
