import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { main } from '../../src/cli/main.js'
import { CONFIG_ENV, configHead } from '../helpers/config-problems.js'

/*
 * A problem line names the option and quotes what was written; both went
 * to the terminal as they were. A key or a value (or what a variable put
 * in) holding an escape sequence recoloured the screen or set its title, a
 * carriage return overwrote the line, a bidi override reordered it; and a
 * 900 KB value was printed whole. The characters are now shown escaped,
 * as \u001b, and each part of the line is bounded.
 */

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-problem-lines-'))
let n = 0
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u

async function check(text: string, env: NodeJS.ProcessEnv = CONFIG_ENV) {
  const file = join(dir, `routes-${++n}.yaml`)
  writeFileSync(file, text)
  const err: string[] = []
  const code = await main(['check', '--config', file], {
    stdout: () => {},
    stderr: (l) => err.push(l),
    env,
    start: async () => {
      throw new Error('check never starts the gateway')
    },
  })
  return { code, lines: err }
}

t.test('controls, bidi overrides and line separators in a key or a value are shown escaped', async (t) => {
  const text = configHead().replace(
    '  clientId: my-bff\n',
    '  clientId: my-bff\n  "cli\\e]0;pwned\\aentSecret": x\n  par: "${PAR_MODE}"\n',
  )
  const { code, lines } = await check(`${text}routes: []\n`, {
    ...CONFIG_ENV,
    PAR_MODE: 'auto\r\u009b2J\u202e\u2028',
  })
  t.equal(code, 1)
  t.same(
    lines.filter((l) => UNSAFE.test(l)),
    [],
    'no line holds a control, format or separator character',
  )
  t.match(lines.join('\n'), 'oidc.cli\\u001b]0;pwned\\u0007entSecret: unknown option')
  t.match(
    lines.join('\n'),
    'oidc.par: must be one of auto, required, off (got "auto\\r\\u009b2J\\u202e\\u2028")',
  )
})

t.test('a 900 KB value is quoted cut short, not whole', async (t) => {
  const text = configHead().replace(
    '  clientId: my-bff\n',
    `  clientId: my-bff\n  par: "${'z'.repeat(900_000)}"\n`,
  )
  const { code, lines } = await check(`${text}routes: []\n`)
  t.equal(code, 1)
  const line = lines.find((l) => l.includes('oidc.par'))
  t.ok(line !== undefined && line.length < 2000, `one line of ${line?.length} characters`)
  t.match(line, /\(got "z+…$/)
})
