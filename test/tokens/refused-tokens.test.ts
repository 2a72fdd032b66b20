import t from 'tap'
import { RefusedTokens } from '../../src/tokens/refused-tokens.js'

t.test('a refused token is remembered per client token until it expires', async (t) => {
  let now = 1_000
  const refused = new RefusedTokens(() => now)
  refused.refused('reports.read', 'cc-1', 2_000)
  t.ok(refused.has('reports.read', 'cc-1'))
  t.notOk(refused.has('orders.read', 'cc-1'), 'another client token: not refused')
  t.notOk(refused.has('reports.read', 'cc-2'), 'another access token: not refused')
  now = 2_000
  t.notOk(refused.has('reports.read', 'cc-1'), 'expired: forgotten, as no one can send it any more')
  refused.refused('reports.read', 'cc-2', Number.POSITIVE_INFINITY)
  now = Number.MAX_SAFE_INTEGER
  t.ok(refused.has('reports.read', 'cc-2'), 'an expiry not known: kept until the bound forgets it')
})
