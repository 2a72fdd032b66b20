import type { AddressInfo } from 'node:net'
import t from 'tap'
import { buildGateway } from '../../src/server/gateway.js'
import { UNREACHABLE_ISSUER } from '../helpers/app.js'
import { route, testConfig } from '../helpers/gateway.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'

/*
 * A Network Error Logging policy is the origin's, not the answer's (W3C
 * Network Error Logging §3.1): one answer's `NEL` and `Report-To` had the
 * browser report every request to the origin, on every route, with its URL,
 * to wherever the upstream said, for the policy's `max_age`. A compromised
 * upstream behind one route so watched the whole app, for a year after it
 * was fixed, as `Clear-Site-Data` (dropped since) let it wipe the origin.
 */

const POLICY = '{"report_to":"watch","max_age":31536000,"include_subdomains":true,"success_fraction":1.0}'
const GROUP = '{"group":"watch","max_age":31536000,"endpoints":[{"url":"https://collector.example/r"}]}'

t.test("an upstream's NEL and Report-To never reach the browser unless its route allows them", async (t) => {
  const upstream = await scriptedUpstream()
  t.teardown(() => upstream.close())
  upstream.answer((res) => {
    res.setHeader('nel', POLICY)
    res.setHeader('report-to', GROUP)
    res.setHeader('reporting-endpoints', 'csp="https://app.example/csp"')
    res.end('ok')
  })
  const app = await buildGateway(
    testConfig({
      port: 0,
      issuer: UNREACHABLE_ISSUER,
      routes: [
        route('/api', upstream.url, { token: 'none', csrf: false }),
        route('/monitored', upstream.url, { token: 'none', csrf: false, allowNetworkErrorLogging: true }),
      ],
    }),
  )
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  const refused = await fetch(`${base}/api/x`)
  t.equal(refused.status, 200)
  t.equal(refused.headers.get('nel'), null, 'NEL dropped')
  t.equal(refused.headers.get('report-to'), null, 'Report-To dropped')
  t.equal(
    refused.headers.get('reporting-endpoints'),
    'csp="https://app.example/csp"',
    "Reporting-Endpoints, which serves only the answer's own document, is kept",
  )

  const allowed = await fetch(`${base}/monitored/x`)
  t.equal(allowed.headers.get('nel'), POLICY, 'a route that allows it passes NEL on')
  t.equal(allowed.headers.get('report-to'), GROUP)
})
