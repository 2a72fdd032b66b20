/*
 * What the schema cannot say, composed from the rules of each part of the
 * config (listener-, provider-, session-, frontend- and route-rules.ts),
 * and what is valid but worth a warning.
 */
import { parseDuration } from './duration.js'
import { checkFapi2 } from './fapi2.js'
import type { Finding } from './finding.js'
import { checkFrontends, formatAt, routeLists, unusedProviders } from './frontend-rules.js'
import { checkHeadersTimeout, checkListeners, checkServerTimers } from './listener-rules.js'
import { checkProviders } from './provider-rules.js'
import { rawProviders } from './providers.js'
import { checkRoutes } from './route-rules.js'
import type { RawConfig } from './schema.js'
import { clientSecretWarning, sessionSecretWarning } from './secret-text.js'
import { checkSession, checkTokenBounds } from './session-rules.js'
import { checkBasePath, checkPublicUrl } from './url-rules.js'

/**
 * What the schema cannot say: cross-field rules and the shape of URLs and
 * paths. Findings land in `findings` as they are made, so a file the schema
 * refused, which these rules may not read past, still reports the ones
 * found before (a missing `oidc:` with an unknown key, at once).
 */
export function checkSemantics(config: RawConfig, findings: Finding[] = []): Finding[] {
  const add = (path: (string | number)[], message: string) => findings.push({ path, message })
  // In the order they have always been found: a config on one line (JSON)
  // lists its problems in it.
  checkServerTimers(config, add)
  checkTokenBounds(config.tokens, add)
  checkHeadersTimeout(config, add)
  if (config.server.publicUrl !== undefined)
    checkPublicUrl(config.server.publicUrl, ['server', 'publicUrl'], add)
  else if (config.frontends === undefined) add(['server', 'publicUrl'], 'is required')
  const providers = rawProviders(config)
  const names = checkProviders(config, providers, add)
  checkSession(config.session, add)
  checkBasePath(config.auth.basePath, ['auth', 'basePath'], add)
  config.frontends?.forEach((frontend, i) => {
    checkPublicUrl(frontend.publicUrl, ['frontends', i, 'publicUrl'], add)
    if (frontend.auth.basePath !== undefined)
      checkBasePath(frontend.auth.basePath, ['frontends', i, 'auth', 'basePath'], add)
  })
  findings.push(...checkFrontends(config))
  for (const list of routeLists(config)) checkRoutes(list, providers, names, add)
  checkListeners(config, add)
  for (const provider of providers) findings.push(...checkFapi2(config, provider))
  return findings
}

/** What is valid but worth a second look: the config still loads. */
export function checkWarnings(config: RawConfig): Finding[] {
  const findings: Finding[] = []
  // The route whose requests may run longest, if the drain would cut them off.
  let longest: { at: string; timeout: string | number; ms: number } | undefined
  for (const list of routeLists(config)) {
    list.routes.forEach((route, i) => {
      const ms = parseDuration(route.timeout)
      if (ms > (longest?.ms ?? parseDuration(config.server.drainTimeout)))
        longest = { at: formatAt([...list.at, i, 'timeout']), timeout: route.timeout, ms }
      if (route.token === 'client' && route.anonymous === true) {
        findings.push({
          path: [...list.at, i, 'anonymous'],
          message: `${route.path} serves callers without a session: anyone who reaches it spends the gateway's client credentials`,
        })
      }
    })
  }
  findings.push(...unusedProviders(config))
  for (const { oidc, path } of rawProviders(config)) {
    const warning = oidc.clientSecret === undefined ? undefined : clientSecretWarning(oidc.clientSecret)
    if (warning) findings.push({ path: [...path, 'clientSecret'], message: warning })
  }
  const { secret, secrets } = config.session
  const sessionSecrets: [(string | number)[], string][] =
    secret === undefined
      ? (secrets ?? []).map((s, i) => [['session', 'secrets', i], s])
      : [[['session', 'secret'], secret]]
  for (const [path, value] of sessionSecrets) {
    const warning = sessionSecretWarning(value)
    if (warning) findings.push({ path, message: warning })
  }
  if (longest) {
    findings.push({
      path: ['server', 'drainTimeout'],
      message: `drainTimeout: ${config.server.drainTimeout} is shorter than ${longest.at} (${longest.timeout}): a request on that route still running at SIGTERM is cut off when the drain ends`,
    })
  }
  return findings
}
