import { readFileSync } from 'node:fs'
import t from 'tap'
import { GatewayMetrics } from '../../src/server/metrics.js'

// Every metric the gateway exports has a row in the operator's table: a
// hand-kept table missed gatehouse_config_reloads_total once.
t.test("every gatehouse_ metric of the gateway's own is in docs/deployment.md's table", async (t) => {
  const table = readFileSync(new URL('../../docs/deployment.md', import.meta.url), 'utf8')
  const metrics = new GatewayMetrics()
  const names = (await metrics.registry.getMetricsAsJSON())
    .map((m) => m.name)
    // prom-client's process and Node metrics, under our prefix, are "besides" the table.
    .filter((name) => name.startsWith('gatehouse_') && !/^gatehouse_(process|nodejs)_/.test(name))
  t.ok(names.length > 15, `${names.length} metrics`)
  for (const name of names) t.match(table, `| \`${name}\` |`, name)
})
