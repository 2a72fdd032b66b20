import t from 'tap'
import { main } from '../../src/cli/main.js'

/*
 * `--config ''`, or GATEHOUSE_CONFIG set to nothing (`GATEHOUSE_CONFIG:
 * ${CONFIG:-}` in a compose file), was taken as the file "": `check`, `start`
 * and `health` said " cannot read the config file: file not found" and
 * " has 1 problem", naming no file and not where the empty name came from.
 */
async function run(argv: string[], env: NodeJS.ProcessEnv) {
  const out: string[] = []
  const err: string[] = []
  const code = await main(argv, {
    stdout: (l) => out.push(l),
    stderr: (l) => err.push(l),
    env,
    start: async () => t.fail('never starts'),
  })
  return { code, out: out.join('\n'), err: err.join('\n') }
}

t.test('an empty --config is a usage error that says so, for each command', async (t) => {
  for (const command of ['check', 'start', 'health']) {
    const r = await run([command, '--config', ''], {})
    t.equal(r.code, 2, `${command}: exit 2, a usage error`)
    t.match(r.err, /^gatehouse: --config was given an empty file name\n/, command)
    t.match(r.err, /Usage: gatehouse/, `${command}: with the usage`)
  }
})

t.test('an empty GATEHOUSE_CONFIG is named, not read as the file ""', async (t) => {
  for (const command of ['check', 'start', 'health']) {
    const r = await run([command], { GATEHOUSE_CONFIG: '' })
    t.equal(r.code, 2, `${command}: exit 2`)
    t.match(
      r.err,
      /^gatehouse: GATEHOUSE_CONFIG is set but empty: set it to the config file, or unset it to read \.\/routes\.yaml\n/,
      command,
    )
  }
})
