import t from 'tap'
import { main } from '../../src/cli/main.js'

/*
 * `gatehouse start --online` and `gatehouse health --online` ran as if the
 * flag were not there: a start its operator meant to be checked against the
 * IdP first went up unchecked, and said nothing of it.
 */
t.test('--online on start or health is a usage error that names check', async (t) => {
  for (const command of ['start', 'health']) {
    const err: string[] = []
    const code = await main([command, '--online', '--config', '/nonexistent/routes.yaml'], {
      stdout: () => {},
      stderr: (l) => err.push(l),
      env: {},
      start: async () => t.fail('never starts'),
    })
    t.equal(code, 2, `${command}: exit 2, a usage error`)
    t.match(
      err.join('\n'),
      /^gatehouse: --online applies to check only \(gatehouse check --online\)\n\nUsage:/,
      command,
    )
  }
})
