import type { FastifyBaseLogger } from 'fastify'
import { Gauge, type Registry } from 'prom-client'
import type { CertificateFacts, GatehouseConfig } from '../config/types.js'

const DAY = 86_400_000
/** Below this many days left, the start-up line is a warning: time to renew before it breaks. */
const RENEW_WITHIN_DAYS = 14

/**
 * Every configured client certificate, by the option that holds it, as
 * `check` names it (`oidc.tls`, `identityProviders[1].tls`, `routes[2].tls`,
 * `frontends[1].routes[0].tls`).
 */
export function configuredCertificates(config: GatehouseConfig): [string, CertificateFacts][] {
  const found: [string, CertificateFacts][] = []
  for (const provider of config.identityProviders)
    if (provider.tls?.certificate) found.push([`${provider.option}.tls`, provider.tls.certificate])
  // A config without `frontends:` has one, unnamed, whose routes are `routes[]`.
  const single = config.frontends.length === 1 && config.frontends[0]!.name === ''
  config.frontends.forEach((frontend, i) => {
    frontend.routes.forEach((route, j) => {
      const option = single ? `routes[${j}].tls` : `frontends[${i}].routes[${j}].tls`
      if (route.tls?.certificate) found.push([option, route.tls.certificate])
    })
  })
  return found
}

/**
 * Says when each client certificate expires, at start and whenever a
 * reload brings one that was not in use, and keeps a gauge of the days
 * each certificate in use has left, so an alert fires before the IdP or an
 * upstream starts refusing the handshake, and stops once the certificate
 * is renewed and reloaded. Expired or mismatched ones never get here: the
 * config load refuses them. One per process: the gauge lives in its one
 * registry, and outlives every config (src/server/lasting.ts).
 */
export class CertificateExpiry {
  readonly #registry: Registry
  readonly #log: FastifyBaseLogger
  readonly #now: () => number
  #inUse: [string, CertificateFacts][] = []
  #gauge: Gauge | undefined

  constructor(registry: Registry, log: FastifyBaseLogger, now: () => number) {
    this.#registry = registry
    this.#log = log
    this.#now = now
  }

  /** The certificates of the config now in use: logged when new, and what the gauge reads from now on. */
  use(config: GatehouseConfig): void {
    this.prepare(config)()
  }

  /**
   * `use` in two steps, for a reload that applies whole or not at all
   * (src/server/reload.ts): what can fail (the lines of the certificates
   * new to it, the gauge's registration) is done now, and changes nothing
   * the gauge reads; the function returned puts them in use, and does not
   * throw.
   */
  prepare(config: GatehouseConfig): () => void {
    const certificates = configuredCertificates(config)
    const lines = certificates
      .filter(
        ([option, facts]) =>
          !this.#inUse.some(
            ([o, f]) => o === option && f.notAfter === facts.notAfter && f.subject === facts.subject,
          ),
      )
      .map(([option, facts]) => this.#line(option, facts))
    // Made once, and kept even if the reload it was made for is refused:
    // until then it reads the certificates in use, and a second
    // registration of its name would throw.
    if (certificates.length > 0 && this.#gauge === undefined) this.#gauge = this.#makeGauge()
    return () => {
      for (const { renew, line } of lines) {
        if (renew) this.#log.warn(line, 'client certificate expires soon: renew it')
        else this.#log.info(line, 'client certificate loaded')
      }
      this.#inUse = certificates
    }
  }

  #line(option: string, facts: CertificateFacts): { renew: boolean; line: Record<string, unknown> } {
    const daysLeft = Math.floor((facts.notAfter - this.#now()) / DAY)
    const line = {
      option,
      certificate: facts.source,
      subject: facts.subject,
      notAfter: new Date(facts.notAfter).toISOString(),
      daysLeft,
    }
    return { renew: daysLeft < RENEW_WITHIN_DAYS, line }
  }

  #makeGauge(): Gauge {
    const expiry = this
    return new Gauge({
      name: 'gatehouse_tls_client_certificate_days_left',
      help: 'Days until each client certificate in use expires, the earliest of its chain (fractional), by option (oidc.tls, identityProviders[i].tls, routes[i].tls, frontends[i].routes[j].tls); alert well before 0.',
      labelNames: ['option'] as const,
      registers: [this.#registry],
      collect() {
        // An option a reload removed has no series any more.
        this.reset()
        for (const [option, facts] of expiry.#inUse) {
          this.set({ option }, (facts.notAfter - expiry.#now()) / DAY)
        }
      },
    })
  }
}
