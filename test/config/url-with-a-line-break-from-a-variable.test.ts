import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { configProblems } from '../helpers/config-problems.js'

/*
 * A URL read from a file or a variable often ends in a line break
 * (`$(cat issuer.txt)`, a Secret made with `echo`). WHATWG URL parsing
 * drops tabs and line breaks and trims spaces, so these passed `gatehouse
 * check`, while the text was kept as written: the route's resource went to
 * the identity provider as `https://orders.example%0A` (RFC 8707 invalid_target
 * at best), and the issuer and upstream were kept, logged and compared with a
 * line break in them.
 */
const env = { SESSION_SECRET: 's'.repeat(32), VALUE: '' }
const config = `server: { publicUrl: https://app.example.com }
oidc: { issuer: "\${ISSUER}", clientId: a, clientSecret: s }
session: { secret: "\${SESSION_SECRET}" }
routes:
  - { path: /api, upstream: "\${UPSTREAM}", resource: "\${RESOURCE}" }
`
const good = {
  ISSUER: 'https://idp.example.com',
  UPSTREAM: 'http://api:8080',
  RESOURCE: 'https://orders.example',
}

/** Its problems, or none when it loads, so that each case is its own assertion. */
const problems = (vars: Record<string, string>) => {
  try {
    return configProblems(config, { ...env, ...good, ...vars })
  } catch {
    return []
  }
}

const REFUSED =
  'holds a space, tab or line break (from a file or a variable?), which a URL parser drops and Gatehouse would keep: remove it'

t.test('a URL option with a line break, a tab or a space is refused at its line', async (t) => {
  const cases: [string, string, string][] = [
    ['ISSUER', 'https://idp.example.com\n', '2 oidc.issuer'],
    ['ISSUER', ' https://idp.example.com', '2 oidc.issuer'],
    ['UPSTREAM', 'http://api:8080\n', '5 routes[0].upstream'],
    ['UPSTREAM', 'http://api:8080\r\n', '5 routes[0].upstream'],
    ['UPSTREAM', 'http://a\tpi:8080', '5 routes[0].upstream'],
    ['RESOURCE', 'https://orders.example\n', '5 routes[0].resource'],
    ['RESOURCE', 'https://orders.example ', '5 routes[0].resource'],
  ]
  for (const [name, value, at] of cases)
    t.same(problems({ [name]: value }), [`${at}: ${REFUSED}`], JSON.stringify(value))
})

t.test('the same URLs without them load', async (t) => {
  t.doesNotThrow(() => parseConfig(config, 'routes.yaml', { ...env, ...good }))
})
