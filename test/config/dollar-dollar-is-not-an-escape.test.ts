import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { configHead, configProblems } from '../helpers/config-problems.js'

/*
 * docker compose reads `$$` as an escaped `$`, so its users write
 * `$${VAR}` for a literal `${VAR}`. Gatehouse has no such escape: the
 * `${VAR}` was replaced all the same and the `$` kept before it, so the
 * option silently held `$` and the variable's value (a secret, if the
 * variable held one), or the text of the unset-variable error misled.
 */

const SECRET = 's'.repeat(40)
const env = { OIDC_CLIENT_SECRET: 'client-secret', SESSION_SECRET: SECRET }
const ESCAPE =
  'is not an escape in Gatehouse, as it is in docker compose: it would be read as $ followed by the reference. A literal ${ cannot be written in the file: put the text in an environment variable and write ${THAT_VARIABLE} here (what a variable brings in is not read again)'

t.test('$${VAR} is an error at its option and line, set or not, never quoting the value', async (t) => {
  for (const vars of [env, { OIDC_CLIENT_SECRET: 'client-secret' }]) {
    const problems = configProblems(configHead('secret: "$${SESSION_SECRET}"'), vars)
    t.same(problems, [`8 session.secret: $\${SESSION_SECRET} ${ESCAPE}`], `set: ${'SESSION_SECRET' in vars}`)
    t.notMatch(problems.join('\n'), SECRET)
  }
})

t.test('in any option, with a default, or after text', async (t) => {
  const upstream = (value: string) =>
    configProblems(`${configHead()}routes:\n  - path: /api\n    upstream: "${value}"\n`, env)
  t.same(upstream('$${UPSTREAM:-http://orders:8080}'), [`11 routes[0].upstream: $\${UPSTREAM:-…} ${ESCAPE}`])
  t.same(upstream('http://orders:8080/$$$${X}'), [`11 routes[0].upstream: $\${X} ${ESCAPE}`])
})

t.test('a $ that does not stand before ${ is text, as before', async (t) => {
  const config = parseConfig(
    `${configHead()}routes:\n  - path: /api\n    upstream: http://orders:8080\n    rewritePath: /price$$5/\${UPSTREAM_PATH:-v1}\n`,
    'routes.yaml',
    env,
  )
  t.equal(config.routes[0]!.rewritePath, '/price$$5/v1')
})
