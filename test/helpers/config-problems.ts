import { ConfigError } from '../../src/config/errors.js'
import { parseConfig } from '../../src/config/load.js'

/** The problems of a bad document, as `line path: message` strings; throws when the document loads. */
export function configProblems(text: string, env: NodeJS.ProcessEnv): string[] {
  try {
    parseConfig(text, 'routes.yaml', env)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return err.problems.map((p) => `${p.line} ${p.path}: ${p.message}`)
  }
  throw new Error('expected a ConfigError')
}

/** A document's problems, or none when it loads: so that each case of a table is an assertion of its own. */
export function problemsOrNone(text: string, env: NodeJS.ProcessEnv): string[] {
  try {
    return configProblems(text, env)
  } catch {
    return []
  }
}

/** What the fixtures' `${…}` read: the client's secret, and a session secret of 32 characters. */
export const CONFIG_ENV = { OIDC_CLIENT_SECRET: 'client-secret', SESSION_SECRET: 'x'.repeat(32) }

/**
 * The head of a valid config, lines 1–8: `server:`, `oidc:` (its secret
 * from OIDC_CLIENT_SECRET) and `session:` with `session` as its one line.
 */
export function configHead(session = 'secret: ${SESSION_SECRET}'): string {
  return `server:
  publicUrl: https://app.example.com
oidc:
  issuer: https://idp.example.com
  clientId: my-bff
  clientSecret: \${OIDC_CLIENT_SECRET}
session:
  ${session}
`
}

/** A valid config of one route, with CONFIG_ENV. */
export const MINIMAL_CONFIG = `${configHead()}routes:
  - path: /api/orders
    upstream: http://orders:8080
`

/** The environment of `withRoutePath` and `withPathPrefix`. */
export const PATH_CONFIG_ENV = { SESSION_SECRET: 's'.repeat(40) }

/** A config whose second route's path is `path` (line 8), beside `/api`; loopback only, so it also builds. */
export const withRoutePath = (path: string) => `server: { publicUrl: "http://127.0.0.1:3000" }
oidc: { issuer: "http://127.0.0.1:1", clientId: bff, clientSecret: s }
session: { secret: "\${SESSION_SECRET}" }
metrics: { enabled: false }
logging: { level: silent }
routes:
  - { path: /api, upstream: "http://127.0.0.1:5000" }
  - { path: "${path}", upstream: "http://127.0.0.1:5000", token: none, csrf: false }
`

/** A config of one frontend whose `pathPrefix` is `prefix` (line 8), with a route under it. */
export const withPathPrefix = (prefix: string) => `server: {}
oidc: { issuer: "http://127.0.0.1:1", clientId: bff, clientSecret: s }
session: { secret: "\${SESSION_SECRET}" }
metrics: { enabled: false }
logging: { level: silent }
frontends:
  - name: shop
    pathPrefix: "${prefix}"
    publicUrl: "http://127.0.0.1:3000"
    routes:
      - { path: "${prefix}/api", upstream: "http://127.0.0.1:5000", token: none }
`
