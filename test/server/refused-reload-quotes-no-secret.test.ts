import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { checkReload } from '../../src/server/reload-check.js'
import { CONFIG_ENV, MINIMAL_CONFIG } from '../helpers/config-problems.js'

/*
 * A reload that changes a setting only a restart can is refused with the
 * running value and the file's, quoted: a secret's variable there
 * (`keyPrefix: ${REDIS_PASSWORD}` after a slip of the editor), or the
 * client's secret pasted into the variable it reads, was printed whole in
 * the refusal the gateway logs, where every other problem names the
 * variable instead (tree.ts `hideSecrets`).
 */

const SECRET = 'Sup3r-s3cret-value-0f-the-client'
const running = parseConfig(MINIMAL_CONFIG, 'routes.yaml', CONFIG_ENV)

const reloaded = (line: string, vars: Record<string, string>, extra = '') =>
  checkReload({
    bytes: Buffer.from(
      `${MINIMAL_CONFIG.replace('  secret: ${SESSION_SECRET}\n', `  secret: \${SESSION_SECRET}\n${line}\n`)}${extra}`,
    ),
    file: 'routes.yaml',
    env: { ...CONFIG_ENV, ...vars },
    running,
  })

const cases: [string, Record<string, string>, string][] = [
  ['  keyPrefix: ${REDIS_PASSWORD}', { REDIS_PASSWORD: SECRET }, 'REDIS_PASSWORD'],
  ['  keyPrefix: ${PREFIX}', { PREFIX: SECRET, OIDC_CLIENT_SECRET: SECRET }, 'OIDC_CLIENT_SECRET'],
]

t.test('a refused reload of a valid file names the variable, not its secret', async (t) => {
  for (const [line, vars, name] of cases) {
    const checked = reloaded(line, vars)
    t.equal(checked.result, 'valid', line)
    const restart = checked.result === 'valid' ? checked.restart : []
    t.match(restart, [
      {
        path: 'session.keyPrefix',
        line: 9,
        message: `the file says "[redacted: the value of ${name}]"`,
      },
    ])
    t.notMatch(JSON.stringify(restart), 'Sup3r', 'no part of the secret')
  }
})

t.test('nor does a refusal of a file with other problems besides', async (t) => {
  for (const [line, vars, name] of cases) {
    const checked = reloaded(line, vars, 'typo: 1\n')
    t.equal(checked.result, 'invalid', line)
    const problems = checked.result === 'invalid' ? checked.problems : []
    t.match(problems, [
      { path: 'session.keyPrefix', message: `the file says "[redacted: the value of ${name}]"` },
      { path: 'typo' },
    ])
    t.notMatch(JSON.stringify(problems), 'Sup3r', 'no part of the secret')
  }
})
