import t from 'tap'
import { refreshScope } from '../../src/tokens/refresh-scope.js'
import type { TokenAudience } from '../../src/types.js'

const orders: TokenAudience = {
  key: 'https://orders orders.read',
  resource: 'https://orders',
  scopes: ['orders.read'],
  label: 'orders',
  dpop: false,
}
const reports: TokenAudience = {
  key: 'https://reports ',
  resource: 'https://reports',
  scopes: [],
  label: 'reports',
  dpop: false,
}

t.test(
  'one flight and lock per session, whichever route asks: each redemption rotates the one refresh token',
  async (t) => {
    for (const coordination of ['single-flight', 'none', undefined] as const) {
      t.equal(refreshScope(coordination, 's1', undefined), 's1', `${coordination}: the login token`)
      t.equal(refreshScope(coordination, 's1', orders), 's1', `${coordination}: a route's`)
      t.equal(refreshScope(coordination, 's1', reports), 's1', `${coordination}: another route's`)
    }
  },
)

t.test('per-audience coordination, for the negative controls, keys each audience apart', async (t) => {
  const scopes = [undefined, orders, reports].map((audience) => refreshScope('per-audience', 's1', audience))
  t.same(scopes, ['s1:', `s1:${orders.key}`, `s1:${reports.key}`])
  t.not(refreshScope('per-audience', 's2', orders), scopes[1], 'and each session apart')
})
