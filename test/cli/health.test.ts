import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { healthUrl } from '../../src/cli/health.js'
import { main } from '../../src/cli/main.js'
import { parseConfig } from '../../src/config/load.js'
import { mkfifo } from '../helpers/fifo.js'
import { REFUSED_PORT } from '../helpers/ports.js'
import { startStack } from '../helpers/stack.js'

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-health-'))

/** A config file for an instance on `host:port`, as the container mounts it. */
function configFile(name: string, host: string, port: number | string, routes = '[]'): string {
  const file = join(dir, name)
  writeFileSync(
    file,
    `server: { host: "${host}", port: ${port}, publicUrl: "http://127.0.0.1:8080" }
oidc: { issuer: http://127.0.0.1:1, clientId: a, clientSecret: "\${OIDC_CLIENT_SECRET}" }
session: { secret: "${'s'.repeat(32)}" }
routes: ${routes}
`,
  )
  return file
}

async function health(file: string) {
  const out: string[] = []
  const err: string[] = []
  const code = await main(['health', '--config', file], {
    stdout: (l) => out.push(l),
    stderr: (l) => err.push(l),
    env: { OIDC_CLIENT_SECRET: 'x' },
    start: () => Promise.reject(new Error('health must not start a gateway')),
  })
  return { code, out: out.join('\n'), err: err.join('\n') }
}

t.test('health probes /healthz on the configured port, not a fixed one', async (t) => {
  const stack = await startStack(t)
  const port = Number(new URL(stack.gateway.url).port)
  t.not(port, 3000)

  const wildcard = await health(configFile('wildcard.yaml', '0.0.0.0', port))
  t.equal(wildcard.code, 0, wildcard.err)
  t.equal(wildcard.out, `healthy: http://127.0.0.1:${port}/healthz`, 'a wildcard bind is probed on loopback')

  const explicit = await health(configFile('explicit.yaml', '127.0.0.1', port))
  t.equal(explicit.code, 0)

  const down = REFUSED_PORT
  const refused = await health(configFile('down.yaml', '0.0.0.0', down))
  t.equal(refused.code, 1, 'nothing listening: unhealthy')
  t.match(refused.err, `gatehouse: unhealthy: http://127.0.0.1:${down}/healthz: ECONNREFUSED`)

  const broken = await health(join(dir, 'missing.yaml'))
  t.equal(broken.code, 1, 'an unreadable config is unhealthy too')
})

t.test(
  'an edit the running gateway refused to reload does not make it unhealthy: the probe reads where it listens',
  async (t) => {
    const stack = await startStack(t)
    const port = Number(new URL(stack.gateway.url).port)
    // A typo the reload refuses (issue: "a bad file keeps the running config; the process stays healthy").
    const typo = await health(
      configFile(
        'typo.yaml',
        '0.0.0.0',
        port,
        '[{ path: /api, upstream: "http://127.0.0.1:1", token: nnone }]',
      ),
    )
    t.equal(typo.code, 0, typo.err)
    t.equal(typo.out, `healthy: http://127.0.0.1:${port}/healthz`)
    // A YAML mistake below the server block (one space too many): the block still reads.
    const syntax = await health(
      configFile(
        'syntax.yaml',
        '0.0.0.0',
        port,
        `\n  - { path: /a, upstream: "http://127.0.0.1:1" }\n   - { path: /b }`,
      ),
    )
    t.equal(syntax.code, 0, `a YAML syntax error elsewhere: ${syntax.err}`)
    const fromEnv = await health(configFile('env.yaml', '0.0.0.0', '"${PORT_UNSET:-' + port + '}"', '7'))
    t.equal(fromEnv.code, 0, `a port from the environment, in a file that is not valid: ${fromEnv.err}`)
  },
)

t.test(
  'a config path that is a FIFO is unhealthy at once, by name: the probe never waits for a writer',
  async (t) => {
    const fifo = join(dir, 'fifo.yaml')
    mkfifo(fifo)
    const r = await health(fifo)
    t.equal(r.code, 1)
    t.equal(
      r.err,
      `${fifo} is a FIFO (named pipe), not a regular file: a config file must be a regular file or a symlink to one\n` +
        `gatehouse: ${fifo} has 1 problem`,
    )
  },
)

t.test('the probe address of each kind of bind', async (t) => {
  const at = (host: string) =>
    healthUrl(
      parseConfig(
        `server: { host: "${host}", port: 8080, publicUrl: "https://app.example.com" }
oidc: { issuer: https://idp.example.com, clientId: a, clientSecret: b }
session: { secret: "${'s'.repeat(32)}" }
routes: []
`,
        'routes.yaml',
        {},
      ).server,
    )
  t.equal(at('0.0.0.0'), 'http://127.0.0.1:8080/healthz')
  t.equal(at('::'), 'http://[::1]:8080/healthz')
  t.equal(at('10.0.0.7'), 'http://10.0.0.7:8080/healthz')
  t.equal(at('::1'), 'http://[::1]:8080/healthz')
})

/**
 * The probe printed its URL, and the error naming it, as the file wrote
 * the host: an escape sequence there retitled or recoloured the terminal
 * of whoever ran `gatehouse health` (or the log that keeps its output),
 * a bidi override reordered the line, and a host of 100,000 characters
 * was printed whole, twice. Both are now shown as config problems are:
 * escaped and bounded.
 */
t.test('the host the file gives is printed escaped and bounded', async (t) => {
  // YAML's own escapes: ESC, BEL, a bidi override, a line separator.
  const hostile = `\\e]0;pwned\\a\\u202eevil\\u2028${'h'.repeat(100_000)}`
  const r = await health(configFile('hostile.yaml', hostile, REFUSED_PORT))
  t.equal(r.code, 1, 'no such host: unhealthy')
  const printed = `${r.out}\n${r.err}`
  t.notOk(
    /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(printed.replaceAll('\n', '')),
    'no control, format or separator character',
  )
  t.match(
    printed,
    '\\u001b]0;pwned\\u0007\\u202eevil\\u2028h',
    'each shown as its escape, to be found and removed',
  )
  t.ok(printed.length < 4_000, `bounded (${printed.length} characters)`)
})
