import t from 'tap'
import { main } from '../../src/cli/main.js'

/*
 * `gatehouse start -c a.yaml -c b.yaml` read b.yaml and said nothing of
 * a.yaml: a wrapper script that adds its own --config to the operator's ran
 * whichever came last, without a word.
 */
t.test('--config given twice is a usage error that names the flag, for each command', async (t) => {
  const forms = [
    ['--config', 'a.yaml', '--config', 'b.yaml'],
    ['-c', 'a.yaml', '-c', 'b.yaml'],
    ['-c', 'a.yaml', '--config=b.yaml'],
  ]
  for (const command of ['check', 'start', 'health']) {
    for (const form of forms) {
      const err: string[] = []
      const code = await main([command, ...form], {
        stdout: () => {},
        stderr: (l) => err.push(l),
        env: {},
        start: async () => t.fail('never starts'),
      })
      t.equal(code, 2, `${command} ${form.join(' ')}: exit 2, a usage error`)
      t.match(
        err.join('\n'),
        /^gatehouse: --config was given 2 times \(a\.yaml, b\.yaml\): give one config file\n\nUsage:/,
        `${command} ${form.join(' ')}`,
      )
    }
  }
})

t.test('one --config is still read', async (t) => {
  const err: string[] = []
  const code = await main(['check', '--config', '/nonexistent/routes.yaml'], {
    stdout: () => {},
    stderr: (l) => err.push(l),
    env: {},
    start: async () => t.fail('never starts'),
  })
  t.equal(code, 1, 'a config problem, not a usage error')
  t.match(err.join('\n'), /\/nonexistent\/routes\.yaml/)
})
