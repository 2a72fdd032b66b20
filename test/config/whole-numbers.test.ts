import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { CONFIG_ENV, configHead, configProblems } from '../helpers/config-problems.js'

/*
 * TypeBox's Value.Convert, which turns `${VAR}` text into the numbers the
 * schema asks for, truncates a fraction where it asks for a whole number:
 * `maxPerUser: 2.5` ran as 2, and `"2.5"` from a variable too, without a
 * word. A config error names the field and the line.
 */

t.test(
  'a fraction where a whole number goes is an error at its line, written or from a variable',
  async (t) => {
    const text = `${configHead('secret: ${SESSION_SECRET}\n  maxPerUser: 2.5\n  maxWebSockets: ${SOCKETS}')}routes:
  - path: /api/orders
    upstream: http://orders:8080
    bodyLimit: 1.5
`
    const problems = configProblems(text, { ...CONFIG_ENV, SOCKETS: '7.25' })
    t.same(problems, [
      '9 session.maxPerUser: must be a whole number in digits: 2.5 would run as 2',
      '10 session.maxWebSockets: must be a whole number in digits: 7.25 would run as 7',
      '14 routes[0].bodyLimit: must be a whole number in digits: 1.5 would run as 1',
    ])
  },
)

t.test('an exponent from a variable, which conversion reads up to its e, is an error too', async (t) => {
  const text = `${configHead('secret: ${SESSION_SECRET}\n  maxWebSockets: ${SOCKETS}')}routes:
  - path: /api/orders
    upstream: http://orders:8080
`
  t.same(configProblems(text, { ...CONFIG_ENV, SOCKETS: '1e1' }), [
    '9 session.maxWebSockets: must be a whole number in digits: 1e1 would run as 1',
  ])
})

t.test('whole numbers, and fractions where the schema takes them, load', async (t) => {
  const config = parseConfig(
    `${configHead('secret: ${SESSION_SECRET}\n  maxPerUser: 2.0\n  maxWebSockets: ${SOCKETS}')}routes:
  - path: /api/orders
    upstream: http://orders:8080
    timeout: 1.5
`,
    'routes.yaml',
    { ...CONFIG_ENV, SOCKETS: '10' },
  )
  t.equal(config.session.maxPerUser, 2)
  t.equal(config.session.maxWebSockets, 10)
  t.equal(config.routes[0]?.timeout, 1500, 'a duration in seconds keeps its fraction')
})
