import type * as oauth from 'oauth4webapi'
import { routesOfProvider } from '../config/provider-routes.js'
import type { GatehouseConfig, IdentityProviderConfig } from '../config/types.js'
import { causeName } from '../errors.js'
import { advertisedClientAuth } from '../oidc/advertised-client-auth.js'
import { OidcClient } from '../oidc/client.js'
import { parIncompatibility } from '../oidc/par.js'
import { printable } from '../oidc/translate.js'
import { compareFapi2 } from './check-fapi2.js'
import { compareDpop } from './check-online-dpop.js'
import { compareExchangeGrants } from './check-online-exchange.js'
import {
  backchannelLogoutHints,
  crossSiteLogoutHints,
  probeEndSessionClientId,
  probeEndSessionPost,
} from './check-online-logout.js'
import { checkCredentials } from './credential-check.js'
import type { OnlineReport, Row, Verdict } from './online-report.js'

const yesNo = (value: unknown) => (value ? 'yes' : 'no')

/**
 * Compares what the configuration needs with what the IdP's discovery
 * document (OIDC Discovery 1.0, RFC 8414) advertises. Blocking: a client
 * authentication method the IdP does not list, or PAR required on one side
 * and unavailable on the other; Gatehouse could not log anyone in.
 */
export function compare(config: GatehouseConfig, as: Readonly<oauth.AuthorizationServer>): OnlineReport {
  const { oidc } = config
  const rows: Row[] = []
  const hints: string[] = []
  const row = (capability: string, need: string, advertised: string, verdict: Verdict) =>
    rows.push({ capability, need, advertised, verdict })

  const wantsRefresh = oidc.scopes.includes('offline_access')
  const scopes = as.scopes_supported
  // RFC 8414 §2: an absent grant_types_supported means authorization_code and implicit only.
  const grants = as.grant_types_supported ?? ['authorization_code', 'implicit']
  const offlineAdvertised = scopes === undefined || scopes.includes('offline_access')
  const refreshAdvertised = grants.includes('refresh_token')
  row(
    'refresh tokens',
    wantsRefresh ? 'offline_access, refresh_token grant' : 'not requested',
    `offline_access ${scopes === undefined ? 'not listed (no scopes_supported)' : yesNo(scopes.includes('offline_access'))}, refresh_token grant ${yesNo(refreshAdvertised)}`,
    !wantsRefresh ? '-' : offlineAdvertised && refreshAdvertised ? 'ok' : 'warn',
  )
  if (wantsRefresh && !/\bconsent\b/.test(oidc.authorizationParams.prompt ?? '')) {
    hints.push(
      'offline_access requested: if this provider follows OIDC Core §11 (oidc-provider, and others certified strict), add authorizationParams.prompt: consent, or sessions end when the first access token expires.',
    )
  }
  if (wantsRefresh && !refreshAdvertised) {
    hints.push(
      'the IdP does not list the refresh_token grant: sessions end when the first access token expires unless it issues refresh tokens anyway.',
    )
  }

  const prompt = oidc.authorizationParams.prompt
  const prompts = as.prompt_values_supported
  if (prompt !== undefined && Array.isArray(prompts)) {
    const unknown = prompt.split(' ').filter((p) => !prompts.includes(p))
    row('prompt (authorizationParams)', prompt, prompts.join(', '), unknown.length === 0 ? 'ok' : 'warn')
    if (unknown.length > 0) {
      hints.push(
        `authorizationParams.prompt: ${unknown.join(' ')} is not in prompt_values_supported; the IdP may refuse every login.`,
      )
    }
  }

  const pkce = as.code_challenge_methods_supported
  row('PKCE S256', 'S256', pkce ? pkce.join(', ') : 'not listed', pkce?.includes('S256') ? 'ok' : 'warn')
  if (!pkce?.includes('S256')) {
    hints.push(
      'code_challenge_methods_supported does not list S256: many IdPs support PKCE without saying so; Gatehouse always sends it.',
    )
  }

  const { methods } = advertisedClientAuth(as)
  row(
    'client authentication',
    oidc.clientAuth,
    methods.join(', '),
    methods.includes(oidc.clientAuth) ? 'ok' : 'BLOCKING',
  )

  row(
    'revocation (RFC 7009)',
    wantsRefresh ? 'at logout' : 'not used',
    yesNo(as.revocation_endpoint),
    as.revocation_endpoint || !wantsRefresh ? 'ok' : 'warn',
  )
  if (!as.revocation_endpoint && wantsRefresh) {
    hints.push(
      'no revocation_endpoint: logout cannot revoke the refresh token; it stays valid until it expires.',
    )
  }
  row(
    'end-session (RP-Initiated Logout)',
    'at logout',
    yesNo(as.end_session_endpoint),
    as.end_session_endpoint ? 'ok' : 'warn',
  )
  hints.push(...crossSiteLogoutHints(config, as))
  row(
    'back-channel logout',
    `${config.auth.basePath}/backchannel-logout`,
    yesNo(as.backchannel_logout_supported),
    as.backchannel_logout_supported ? 'ok' : 'warn',
  )
  hints.push(...backchannelLogoutHints(config, as))

  const userinfoNeed = oidc.userinfo === undefined ? 'if advertised' : oidc.userinfo ? 'yes' : 'off'
  row(
    'userinfo',
    userinfoNeed,
    yesNo(as.userinfo_endpoint),
    oidc.userinfo === false ? '-' : as.userinfo_endpoint || oidc.userinfo === undefined ? 'ok' : 'warn',
  )

  const parAdvertised = Boolean(as.pushed_authorization_request_endpoint)
  const parRequiredByIdp = as.require_pushed_authorization_requests === true
  // What the gateway's /readyz and sign-in refuse on (oidc/par.ts), no more and no less.
  const parBlocking = parIncompatibility(oidc, as) !== undefined
  row(
    'PAR (RFC 9126)',
    oidc.par,
    parRequiredByIdp ? 'required' : yesNo(parAdvertised),
    parBlocking ? 'BLOCKING' : 'ok',
  )
  if (oidc.par === 'off' && parRequiredByIdp) {
    hints.push('the IdP requires pushed authorization requests: set oidc.par: auto.')
  } else if (parRequiredByIdp && !parAdvertised) {
    hints.push(
      'the IdP requires pushed authorization requests but advertises no usable pushed_authorization_request_endpoint: no sign-in can work until its metadata names one.',
    )
  }

  compareScopes(config, scopes, row, hints)
  compareExchangeGrants(config, as, row, hints)
  compareDpop(oidc, as, row, hints)
  const fapi2 = compareFapi2(config, as)
  rows.push(...fapi2.rows)
  hints.push(...fapi2.hints)

  row(
    'RFC 9207 iss in responses',
    'checked when advertised',
    yesNo(as.authorization_response_iss_parameter_supported),
    as.authorization_response_iss_parameter_supported ? 'ok' : 'warn',
  )

  // OpenID Connect Discovery 1.0 §3 requires the list; without it
  // oauth4webapi takes OIDC Core §3.1.3.7's default alone.
  if (as.id_token_signing_alg_values_supported === undefined) {
    hints.push(
      'the IdP lists no id_token_signing_alg_values_supported (OpenID Connect Discovery 1.0 §3 requires it): ID tokens are accepted only signed RS256 (OIDC Core §3.1.3.7); if it signs them otherwise, every sign-in fails.',
    )
  }
  if ((oidc.userinfo ?? true) && urlHost(as.userinfo_endpoint) === 'graph.microsoft.com') {
    hints.push(
      "Entra ID: its userinfo_endpoint is Microsoft Graph's, which takes only an access token issued for Graph; with your API's scope in oidc.scopes every sign-in fails there (HTTP 401): set oidc.userinfo: false (the ID token carries the claims).",
    )
  }

  const issuer = new URL(as.issuer)
  if (issuer.hostname === 'accounts.google.com' && oidc.authorizationParams.access_type !== 'offline') {
    hints.push('Google: add authorizationParams.access_type: offline and prompt: consent for refresh tokens.')
  }
  if (/\.auth0\.com$/.test(issuer.hostname) && oidc.authorizationParams.audience === undefined) {
    hints.push(
      'Auth0: without authorizationParams.audience the access token is opaque and meant for userinfo only; set your API identifier.',
    )
  }
  return { rows, hints, blocking: rows.some((r) => r.verdict === 'BLOCKING') }
}

/**
 * Every scope the config asks for (at login, and per route) against
 * `scopes_supported`. OIDC Discovery 1.0 lets an OP list only some of the
 * scopes it supports, so a missing one is a warning, never blocking.
 */
function compareScopes(
  config: GatehouseConfig,
  supported: readonly string[] | undefined,
  row: (capability: string, need: string, advertised: string, verdict: Verdict) => void,
  hints: string[],
): void {
  const wanted = new Map<string, string>()
  for (const scope of config.oidc.scopes) wanted.set(scope, 'oidc.scopes')
  config.routes.forEach((route, i) => {
    for (const scope of route.scopes) if (!wanted.has(scope)) wanted.set(scope, `routes[${i}].scopes`)
  })
  const need = [...wanted.keys()].join(' ')
  if (supported === undefined) {
    row('scopes', need, 'not listed (no scopes_supported)', '-')
    return
  }
  const missing = [...wanted].filter(([scope]) => !supported.includes(scope))
  row(
    'scopes',
    need,
    missing.length === 0 ? 'all listed' : `not listed: ${missing.map(([s]) => s).join(', ')}`,
    missing.length === 0 ? 'ok' : 'warn',
  )
  for (const [scope, where] of missing) {
    hints.push(
      `scope ${scope} (${where}) is not in scopes_supported: the IdP may refuse it (invalid_scope) or leave it out of the tokens.`,
    )
  }
}

/** Longest cell of the table; its longest real one, a probe's answer, is about 700 characters. */
const MAX_CELL = 1000
/** Longest hint; a real one is at most about 1,000 characters. */
const MAX_HINT = 2000

/** The host of an advertised endpoint, or `undefined` for none or no URL. */
function urlHost(endpoint: unknown): string | undefined {
  if (typeof endpoint !== 'string') return undefined
  try {
    return new URL(endpoint).hostname
  } catch {
    return undefined
  }
}

/**
 * The report as a fixed-width table, then the hints. Each cell and hint is
 * made printable and bounded here, the one place the IdP's strings reach
 * the terminal: an escape sequence in an advertised algorithm name would
 * otherwise recolour or rewrite the screen (a carriage return can hide a
 * BLOCKING verdict), a bidi override reorder the line, and a 1 MB value
 * pad every row of the table to 1 MB.
 */
export function formatReport(issuer: string, report: OnlineReport): string[] {
  const header: Row = {
    capability: 'capability',
    need: 'config needs',
    advertised: 'IdP advertises',
    verdict: '-',
  }
  const shown = (r: Row): Row => ({
    capability: printable(r.capability, MAX_CELL),
    need: printable(r.need, MAX_CELL),
    advertised: printable(r.advertised, MAX_CELL),
    verdict: r.verdict,
  })
  const rows = report.rows.map(shown)
  const all = [header, ...rows]
  const width = (key: keyof Row) => Math.max(...all.map((r) => r[key].length))
  const widths = { capability: width('capability'), need: width('need'), advertised: width('advertised') }
  const line = (r: Row, verdict: string) =>
    `${r.capability.padEnd(widths.capability)}  ${r.need.padEnd(widths.need)}  ${r.advertised.padEnd(widths.advertised)}  ${verdict}`
  return [
    `IdP: ${printable(issuer, MAX_CELL)}`,
    line(header, 'result'),
    ...rows.map((r) => line(r, r.verdict)),
    ...report.hints.map((h) => `hint: ${printable(h, MAX_HINT)}`),
    report.blocking
      ? 'FAIL: Gatehouse cannot log users in with this IdP as configured.'
      : report.unproven
        ? 'OK: no blocking mismatch, but the client credentials were NOT proven (see the hint).'
        : 'OK: no blocking mismatch.',
  ]
}

/**
 * Checks each provider in turn: discovers it (with its configured
 * timeouts), compares, and tries to prove the client credentials with
 * harmless requests (`checkCredentials`). Returns the exit code: 1 when
 * any provider could not log anyone in, or was not found; 0 otherwise,
 * also when the credentials could not be proven, which the output says.
 */
export async function checkOnline(
  config: GatehouseConfig,
  io: { stdout(line: string): void; stderr(line: string): void },
): Promise<number> {
  let code = 0
  for (const provider of config.identityProviders) {
    const named = config.identityProviders.length > 1 ? `${provider.name}: ` : ''
    code = Math.max(code, await checkProvider(providerView(config, provider), named, io))
  }
  return code
}

/**
 * The config as one provider sees it: that provider as `oidc`, and only
 * the routes its sessions use, so every comparison below (scopes, DPoP,
 * FAPI, credentials) reads the provider it is about.
 */
function providerView(config: GatehouseConfig, provider: IdentityProviderConfig): GatehouseConfig {
  return {
    ...config,
    oidc: provider,
    identityProviders: [provider],
    routes: routesOfProvider(config.frontends, provider.name),
  }
}

async function checkProvider(
  config: GatehouseConfig,
  named: string,
  io: { stdout(line: string): void; stderr(line: string): void },
): Promise<number> {
  const oidc = new OidcClient(config)
  try {
    try {
      await oidc.discover()
    } catch (err) {
      io.stderr(
        `gatehouse: ${named}discovery of ${config.oidc.issuer} failed: ${printable(causeName(err as Error) ?? (err as Error).message, MAX_HINT)}`,
      )
      return 1
    }
    // Discovery left out each list that is no list of strings, and named it.
    const compared = compare(config, oidc.metadata!)
    const probed = await checkCredentials(config, oidc, oidc.metadata!)
    const byPost = await probeEndSessionPost(config, oidc.metadata!, oidc)
    const byClientId = await probeEndSessionClientId(config, oidc.metadata!, oidc)
    const report: OnlineReport = {
      rows: [...compared.rows, ...byPost.rows, ...byClientId.rows, ...probed.rows],
      hints: [
        ...oidc.misadvertised,
        ...compared.hints,
        ...byPost.hints,
        ...byClientId.hints,
        ...probed.hints,
      ],
      blocking: compared.blocking || probed.blocking,
      ...(probed.unproven ? { unproven: probed.unproven } : {}),
    }
    for (const line of formatReport(`${named}${oidc.issuer}`, report)) io.stdout(line)
    return report.blocking ? 1 : 0
  } finally {
    await oidc.close()
  }
}
