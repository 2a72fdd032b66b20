import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { CONFIG_ENV, configHead, configProblems } from '../helpers/config-problems.js'

/*
 * `rewritePath` is put before the rest of every request's path as
 * written. `//x` was accepted: a target that starts `//` is a
 * network-path reference (RFC 3986 §4.2), which an upstream that parses
 * it as a URL reads as the host `x`. So were a
 * dot segment, which the upstream resolves away (§5.2.4), and a `?` or
 * `#`, which turned the request's own path into a query.
 */

const config = (rewritePath: string) =>
  `${configHead()}routes:\n  - path: /api\n    upstream: http://orders:8080\n    rewritePath: "${rewritePath}"\n`

const HOST =
  "must not start with // or /\\ (nor their %-escapes): the upstream would read what follows as another server's name (RFC 3986 §4.2), not a path"
const DOTS =
  'must not hold a . or .. segment (nor %2e): the upstream would resolve it (RFC 3986 §5.2.4) and serve another path than the one written'
const QUERY =
  "must not hold ? or #: every request's own path is put after it, and would become part of a query or fragment; write ? as %3F and # as %23 if the upstream's path holds them"
const TEXT = 'must not hold spaces, control characters or \\, which some upstreams read as /'
const ESCAPE =
  'holds a % that starts no valid %-escape (two hex digits, of UTF-8 text): write % itself as %25'

t.test(
  'a rewritePath the upstream would read as another host, path or query is refused at its line',
  async (t) => {
    const cases: [string, string][] = [
      ['//evil.example', HOST],
      ['//', HOST],
      ['/\\\\evil.example', HOST],
      ['/%2F%2fevil.example', HOST],
      ['/%5cevil.example', HOST],
      ['/v1/../admin', DOTS],
      ['/v1/..', DOTS],
      ['/./v1', DOTS],
      ['/v1/%2e%2E/admin', DOTS],
      ['/v1/.%2e', DOTS],
      ['/v1?tenant=a', QUERY],
      ['/v1#x', QUERY],
      ['/v1/a b', TEXT],
      ['/v1\\\\a', TEXT],
      ['/v1/100%', ESCAPE],
      ['/v1/%zz', ESCAPE],
    ]
    for (const [rewritePath, problem] of cases) {
      t.same(
        configProblems(config(rewritePath), CONFIG_ENV),
        [`12 routes[0].rewritePath: ${problem}`],
        rewritePath,
      )
    }
  },
)

t.test('escapes the upstream reads as data, and dots inside a segment, still load', async (t) => {
  for (const rewritePath of [
    '/api/v4/projects/group%2Fproject',
    '/v1/items%3AbatchGet',
    '/v1/a..b/.well-known',
    '/',
  ]) {
    const loaded = parseConfig(config(rewritePath), 'routes.yaml', CONFIG_ENV)
    t.equal(loaded.routes[0]!.rewritePath, rewritePath, rewritePath)
  }
})
