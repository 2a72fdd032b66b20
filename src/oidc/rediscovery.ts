/**
 * A config reload discovers again each provider whose client it keeps, or
 * whose new client starts from the running one's document
 * (provider-clients.ts `sameDiscovery`): an OpenID Provider may change its metadata (its
 * signing algorithms, an endpoint moved, PAR or DPoP advertised) while the
 * gateway runs, and
 * discovery otherwise ran once per process. Relying parties that cache the
 * document refresh it (IdentityModel's `DiscoveryCache`, 24 h by
 * default); here the operator says when, with `SIGHUP` or an edit.
 *
 * The new document is put in use only once it has been fetched and has
 * passed every check the first one did (`OidcClient.discover`, which
 * swaps it in whole or not at all). A failure keeps the running metadata,
 * with a warning: a provider the gateway already knows is not made
 * unusable, nor the reload refused, because its IdP is briefly down.
 */
import { isDeepStrictEqual } from 'node:util'
import type { FastifyBaseLogger } from 'fastify'
import type { ConfigProblem } from '../config/errors.js'
import type { IdentityProviderConfig } from '../config/types.js'
import { causeName, type ErrorCode, type LogCode } from '../errors.js'
import type { OidcClient } from './client.js'
import { reportDiscovered } from './discovery.js'
import { printable } from './translate.js'

/**
 * The most members of a changed document its log line names, and the
 * longest name it quotes: the names are the provider's, and a document may
 * hold a megabyte of them (IDP_MAX_RESPONSE), which made one log line of
 * that size on each reload that found them changed.
 */
export const MAX_CHANGED_LISTED = 20
const MAX_MEMBER_NAME = 100
/** The longest incompatibility a line quotes. */
const MAX_REASON = 500

/**
 * Discovers again each of `clients` that has been discovered (one still
 * being discovered for the first time has its own retries, discovery.ts),
 * all at once; each bounded by its provider's `timeout`. Never rejects.
 */
export async function rediscover(clients: readonly OidcClient[], log: FastifyBaseLogger): Promise<void> {
  await Promise.all(clients.filter((client) => client.discovered).map((client) => once(client, log)))
}

async function once(oidc: OidcClient, log: FastifyBaseLogger): Promise<void> {
  const before = oidc.metadata
  const wasIncompatible = oidc.incompatibility
  try {
    await oidc.discover()
  } catch (err) {
    const code: LogCode = 'GATEHOUSE_IDP_REDISCOVERY_FAILED'
    log.warn(
      {
        code,
        idp: oidc.name,
        issuer: oidc.issuer,
        reason: causeName(err as Error) ?? (err as Error).message,
      },
      'the identity provider could not be discovered again on config reload; the metadata discovered before stays in use',
    )
    return
  }
  const after = oidc.metadata
  if (after === before) {
    log.debug(
      { idp: oidc.name, issuer: oidc.issuer },
      'the identity provider was discovered again: its metadata is unchanged',
    )
    return
  }
  const changed = changedMembers(before, after)
  log.info(
    {
      idp: oidc.name,
      issuer: oidc.issuer,
      changed: changed.slice(0, MAX_CHANGED_LISTED).map((name) => printable(name, MAX_MEMBER_NAME)),
      changedCount: changed.length,
    },
    'the identity provider was discovered again on config reload: its new metadata is in use',
  )
  reportDiscovered(oidc, log.child({ idp: oidc.name }))
  reportCompatibility(oidc, wasIncompatible, log)
}

/**
 * A document that passes discovery may still make sign-in impossible as
 * configured (PAR, DPoP, FAPI 2.0: `OidcClient.incompatibility`): every new
 * sign-in is then a 503 and `/readyz` reports it, which a line at info
 * saying the new metadata is in use did not tell. Said when it starts and
 * when it ends, not at each reload in between.
 */
function reportCompatibility(oidc: OidcClient, was: string | undefined, log: FastifyBaseLogger): void {
  const now = oidc.incompatibility
  if (now !== undefined && now !== was) {
    const code: ErrorCode = 'GATEHOUSE_ERR_IDP_INCOMPATIBLE'
    log.warn(
      // Bounded: it quotes lists of the provider's (dpop.ts).
      { code, idp: oidc.name, issuer: oidc.issuer, reason: printable(now, MAX_REASON) },
      "the identity provider's new metadata makes sign-in impossible as configured (reason): new sign-ins at it are refused (503 idp_incompatible) and /readyz reports it, until the config changes or a reload discovers a document it can sign in with",
    )
  } else if (now === undefined && was !== undefined) {
    log.info(
      { idp: oidc.name, issuer: oidc.issuer },
      'the identity provider is compatible again with the config: sign-in works',
    )
  }
}

/**
 * The providers a reload would leave unable to sign in (`incompatibility`:
 * PAR, DPoP, FAPI 2.0) with the new entry of `providers`, against the
 * document their new client holds, where the running entry of the same
 * name could: what `check --online` calls blocking, as a problem of the
 * entry. A client the reload keeps is left out, as is a provider already
 * unable to sign in against that document: the IdP changed that, whether
 * a rediscovery has warned of it yet or this reload's finds it, and
 * refusing would hold back every other change of the file until it changes
 * back.
 */
export function madeIncompatible(
  providers: readonly IdentityProviderConfig[],
  running: readonly OidcClient[],
  clients: readonly OidcClient[],
): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  for (const client of clients) {
    if (running.includes(client) || !client.discovered) continue
    const reason = client.incompatibility
    if (reason === undefined) continue
    // The running entry is judged against the document the new client
    // holds, which this reload's rediscovery may have just fetched: an IdP
    // that changed since the last discovery (a PAR endpoint or a DPoP
    // algorithm dropped) has left the running entry unable to sign in too,
    // whether or not its client has heard. Another issuer's document says
    // nothing of the running entry.
    const before = running.find((was) => was.name === client.name)
    if (
      before?.incompatibleWith(before.issuer === client.issuer ? client.metadata : before.metadata) !==
      undefined
    )
      continue
    problems.push({
      path: providers.find((provider) => provider.name === client.name)?.option ?? '',
      message: `${printable(reason, MAX_REASON)}: every new sign-in at ${client.issuer} would be refused (503 idp_incompatible); the running config is kept`,
    })
  }
  return problems
}

/** The members of the discovery document that differ, by name. */
function changedMembers(before: object | undefined, after: object | undefined): string[] {
  const a = (before ?? {}) as Record<string, unknown>
  const b = (after ?? {}) as Record<string, unknown>
  return [...new Set([...Object.keys(a), ...Object.keys(b)])]
    .filter((key) => !isDeepStrictEqual(a[key], b[key]))
    .sort()
}
