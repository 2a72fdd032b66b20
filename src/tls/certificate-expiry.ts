import type { FastifyBaseLogger } from 'fastify'
import { Gauge, type Registry } from 'prom-client'
import { SHORTHAND_PROVIDER } from '../config/schema.js'
import type { CertificateFacts, GatehouseConfig } from '../config/types.js'

const DAY = 86_400_000
/** Below this many days left, the start-up line is a warning: time to renew before it breaks. */
const RENEW_WITHIN_DAYS = 14

/**
 * Every configured client certificate, by the option that holds it
 * (`oidc.tls`, `identityProviders[1].tls`, `routes[2].tls`).
 */
export function configuredCertificates(config: GatehouseConfig): [string, CertificateFacts][] {
  const found: [string, CertificateFacts][] = []
  const shorthand = config.identityProviders.length === 1 && config.oidc.name === SHORTHAND_PROVIDER
  config.identityProviders.forEach((provider, i) => {
    const option = shorthand ? 'oidc.tls' : `identityProviders[${i}].tls`
    if (provider.tls?.certificate) found.push([option, provider.tls.certificate])
  })
  config.routes.forEach((route, i) => {
    if (route.tls?.certificate) found.push([`routes[${i}].tls`, route.tls.certificate])
  })
  return found
}

/**
 * Says at start when each client certificate expires, and keeps a gauge of
 * the days it has left, so an alert fires before the IdP or an upstream
 * starts refusing the handshake. Expired or mismatched ones never get here:
 * the config load refuses them.
 */
export function reportCertificateExpiry(
  config: GatehouseConfig,
  registry: Registry,
  log: FastifyBaseLogger,
  now: () => number,
): void {
  const certificates = configuredCertificates(config)
  if (certificates.length === 0) return
  for (const [option, facts] of certificates) {
    const daysLeft = Math.floor((facts.notAfter - now()) / DAY)
    const line = {
      option,
      certificate: facts.source,
      subject: facts.subject,
      notAfter: new Date(facts.notAfter).toISOString(),
      daysLeft,
    }
    if (daysLeft < RENEW_WITHIN_DAYS) log.warn(line, 'client certificate expires soon: renew it')
    else log.info(line, 'client certificate loaded')
  }
  new Gauge({
    name: 'gatehouse_tls_client_certificate_days_left',
    help: 'Days until each configured client certificate expires (fractional), by option (oidc.tls, routes[i].tls); alert well before 0.',
    labelNames: ['option'] as const,
    registers: [registry],
    collect() {
      for (const [option, facts] of certificates) this.set({ option }, (facts.notAfter - now()) / DAY)
    },
  })
}
