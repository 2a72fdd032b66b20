import { readdirSync, readFileSync } from 'node:fs'
import type { FastifyBaseLogger } from 'fastify'
import { Registry } from 'prom-client'
import t from 'tap'
import type { GatehouseConfig } from '../../src/config/types.js'
import { KNOWN_METHODS } from '../../src/method-label.js'
import { exportRefusals, type StoreRefusals } from '../../src/redis/refusals.js'
import { GatewayMetrics } from '../../src/server/metrics.js'
import { RequestMetrics } from '../../src/server/request-metrics.js'
import { CertificateExpiry } from '../../src/tls/certificate-expiry.js'

const docs = new URL('../../docs/', import.meta.url)
const pages = [
  new URL('../../README.md', import.meta.url),
  ...readdirSync(docs)
    .filter((file) => file.endsWith('.md'))
    .map((file) => new URL(file, docs)),
]

/** Every metric of the gateway's own, with the labels it has, read from the metrics themselves. */
async function labelsByMetric(): Promise<Map<string, Set<string>>> {
  // A store that reports both kinds of figures, so every store gauge is registered.
  const metrics = new GatewayMetrics({
    report: () => ({
      heldSessions: () => 0,
      localCache: {
        enabled: () => true,
        copy: { size: 0, armed: true, stats: { hits: 0, misses: 0 } },
      },
    }),
  } as never)
  // The request metrics are not prom-client's: their labels show only on a sample.
  metrics.observeRequest('/api', 'GET', 200, 0.01)
  const quiet = { info() {}, warn() {} } as unknown as FastifyBaseLogger
  new CertificateExpiry(metrics.registry, quiet, Date.now).use({
    identityProviders: [
      {
        option: 'oidc',
        tls: { certificate: { notAfter: Date.now() + 864e5, subject: 'CN=x', source: 'x' } },
      },
    ],
    frontends: [],
  } as unknown as GatehouseConfig)
  // The Redis store's own, registered where the store is Redis (lasting.ts).
  exportRefusals({ recent: async () => [] } as unknown as StoreRefusals, metrics.registry)
  const labels = new Map<string, Set<string>>()
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    const own = (metrics.registry.getSingleMetric(metric.name) as { labelNames?: string[] } | undefined)
      ?.labelNames
    const sampled = metric.values.flatMap((value) => Object.keys(value.labels)).filter((l) => l !== 'le')
    labels.set(metric.name, new Set([...(own ?? []), ...sampled]))
  }
  return labels
}

// docs/errors.md once sent operators to `{reason="session_limit"}`, a label
// the metric never had: an alert on it matches nothing.
t.test(
  'every label a page puts on a gatehouse_ metric, as name{label…}, is one the metric has',
  async (t) => {
    const labels = await labelsByMetric()
    t.ok(
      labels.has('gatehouse_http_requests_total') && labels.has('gatehouse_tls_client_certificate_days_left'),
    )
    let references = 0
    for (const page of pages) {
      const text = readFileSync(page, 'utf8')
      for (const [, name, selector] of text.matchAll(/`(gatehouse_[a-z_]+)\{([^}`]*)\}`/g)) {
        references++
        const where = `${page.pathname.split('/').slice(-2).join('/')}: ${name}{${selector}}`
        const known = labels.get(name!)
        if (!known) {
          t.fail(`${where}: no such metric`)
          continue
        }
        for (const part of selector!.split(',')) {
          const label = part.split('=')[0]!.trim()
          t.ok(known.has(label), `${where}: ${label} is one of ${[...known].join(', ') || 'no labels'}`)
        }
      }
    }
    t.ok(references > 10, `${references} references checked`)
  },
)

// The section said 68 statuses and listed no 1xx, which an unnamed 1xx code gets.
t.test("deployment.md's request labels count the values the request metrics can take", async (t) => {
  const section = readFileSync(new URL('../../docs/deployment.md', import.meta.url), 'utf8').split(
    '### Request labels',
  )[1]!
  const registry = new Registry()
  const requests = new RequestMetrics(registry, [1])
  for (const method of [...KNOWN_METHODS, 'PROPFIND']) requests.observe('/api', method, 200, 0)
  for (let status = 0; status < 1000; status++) requests.observe('/api', 'GET', status, 0)
  const counted = (await registry.getSingleMetricAsString('gatehouse_http_requests_total'))
    .split('\n')
    .filter((line) => !line.startsWith('#') && line !== '')
  const values = (label: string) =>
    new Set(counted.map((line) => new RegExp(`${label}="([^"]*)"`).exec(line)![1]!))
  const methods = values('method')
  const statuses = values('status')
  t.match(section, `${methods.size} methods, ${statuses.size} statuses`)
  for (const value of statuses) if (/x|other/.test(value)) t.match(section, `\`${value}\``, value)
})
