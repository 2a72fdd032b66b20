import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { CONFIG_ENV, configHead, configProblems } from '../helpers/config-problems.js'

/**
 * `http://orders:8080?` parses to a URL with no query (`search` is ''), so
 * the "origin only" check let it through, and the proxy builds its URLs
 * from the text: every DPoP proof to that upstream named
 * `http://orders:8080/` as its `htu`, whatever the path, and a resource
 * server refused them all (RFC 9449 §4.3) while bearer routes worked.
 */
const withUpstream = (upstream: string) =>
  `${configHead()}routes:\n  - path: /api/orders\n    upstream: ${JSON.stringify(upstream)}\n`

const REFUSED =
  '11 routes[0].upstream: must be an origin only, without a query or fragment; use rewritePath to change the path'

t.test('an upstream with a query or fragment, even an empty one, is refused', async (t) => {
  for (const upstream of [
    'http://orders:8080?',
    'http://orders:8080/?',
    'http://orders:8080#',
    'http://orders:8080/#',
    'http://orders:8080#top',
    'http://orders:8080?a=1',
  ])
    t.same(configProblems(withUpstream(upstream), CONFIG_ENV), [REFUSED], upstream)
})

t.test('an origin, with or without a trailing slash, a default port or capitals, is taken', async (t) => {
  for (const upstream of [
    'http://orders:8080',
    'http://orders:8080/',
    'HTTPS://Orders.example:443',
    'http://[::1]:8080',
  ])
    t.doesNotThrow(() => parseConfig(withUpstream(upstream), 'routes.yaml', CONFIG_ENV), upstream)
})
