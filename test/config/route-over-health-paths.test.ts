import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { buildGateway } from '../../src/server/gateway.js'
import { configProblems } from '../helpers/config-problems.js'

/*
 * A route at /healthz or /readyz passed `check`; the start then failed with
 * Fastify's "Method 'GET' already declared for route '/healthz'", and a
 * reload with it was refused without a line and retried as if the file were
 * fine. In a frontend matched by host, the route instead took the health
 * endpoints over for that host, where a probe by the pod's address may land.
 */

const SECRET = 's'.repeat(40)
const env = { SESSION_SECRET: SECRET }

const single = (path: string) => `server: { publicUrl: "http://127.0.0.1:3000" }
oidc: { issuer: "http://127.0.0.1:1", clientId: bff, clientSecret: s }
session: { secret: "\${SESSION_SECRET}" }
metrics: { enabled: false }
routes:
  - { path: /api, upstream: "http://127.0.0.1:5000" }
  - { path: "${path}", upstream: "http://127.0.0.1:5000", token: none }
`

const frontends = (path: string) => `server: {}
oidc: { issuer: "http://127.0.0.1:1", clientId: bff, clientSecret: s }
session: { secret: "\${SESSION_SECRET}" }
metrics: { enabled: false }
frontends:
  - name: partners
    pathPrefix: /partners
    publicUrl: "http://localhost:3000"
  - name: staff
    host: 127.0.0.1
    publicUrl: "http://127.0.0.1:3000"
    routes:
      - { path: "${path}", upstream: "http://127.0.0.1:5000", token: none }
`

t.test('a route at a health endpoint is a check error at its path and line', async (t) => {
  for (const path of ['/healthz', '/readyz', '/healthz/']) {
    const own = path.replace(/\/$/, '')
    t.same(
      configProblems(single(path), env),
      [
        `7 routes[1].path: ${own} is served by Gatehouse itself, on every host (its health checks): choose another path`,
      ],
      path,
    )
    t.same(
      configProblems(frontends(path), env),
      [
        `13 frontends[1].routes[0].path: ${own} is served by Gatehouse itself, on every host (its health checks): choose another path`,
      ],
      `${path} in a frontend matched by host`,
    )
  }
})

t.test('a route under the sign-in path is refused too, in a frontend as without', async (t) => {
  t.same(configProblems(single('/auth/extra'), env), ['7 routes[1].path: overlaps auth.basePath (/auth)'])
  t.same(configProblems(frontends('/auth/extra'), env), [
    '13 frontends[1].routes[0].path: overlaps frontends[1].auth.basePath (/auth)',
  ])
})

t.test('paths beside them load and start, and the health endpoints still answer', async (t) => {
  for (const text of [single('/healthz/details'), single('/'), frontends('/readyz-report')]) {
    const app = await buildGateway(parseConfig(text, 'routes.yaml', env))
    t.teardown(() => app.close())
    await app.ready()
    const live = await app.inject({ url: '/healthz', headers: { host: '127.0.0.1:3000' } })
    t.same([live.statusCode, live.json()], [200, { status: 'ok' }])
  }
})
