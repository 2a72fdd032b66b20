import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { main } from '../../src/cli/main.js'
import { configDigest } from '../../src/config/digest.js'
import { MAX_PROBLEM_LINES } from '../../src/config/errors.js'
import type { GatehouseConfig } from '../../src/config/types.js'

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-cli-'))
const good = join(dir, 'good.yaml')
const bad = join(dir, 'bad.yaml')
writeFileSync(
  good,
  `server: { publicUrl: https://app.example.com }
oidc: { issuer: https://idp.example.com, clientId: a, clientSecret: "\${OIDC_CLIENT_SECRET}" }
session: { secret: "${'s'.repeat(32)}" }
routes:
  - { path: /api, upstream: http://api:8080 }
`,
)
writeFileSync(bad, `server: { publicUrl: https://app.example.com, colour: blue }\nroutes: []\n`)

function run(argv: string[], env: NodeJS.ProcessEnv = { OIDC_CLIENT_SECRET: 'x' }) {
  const out: string[] = []
  const err: string[] = []
  const started: GatehouseConfig[] = []
  const digests: string[] = []
  const code = main(argv, {
    stdout: (l) => out.push(l),
    stderr: (l) => err.push(l),
    env,
    start: async (config, _file, digest) => {
      started.push(config)
      digests.push(digest)
    },
  })
  return code.then((c) => ({ code: c, out: out.join('\n'), err: err.join('\n'), started, digests }))
}

t.test('check: OK on a good file, exit 0', async (t) => {
  const r = await run(['check', '--config', good])
  t.equal(r.code, 0)
  t.match(r.out, `OK: ${good} (1 route)`)
  t.same(r.started, [], 'check never starts the gateway')
})

t.test('check: each problem by file, line and path; exit 1; no stack trace', async (t) => {
  const r = await run(['check', '-c', bad])
  t.equal(r.code, 1)
  t.match(r.err, `${bad}:1 server.colour: unknown option`)
  t.match(r.err, /oidc: is required/)
  t.notMatch(r.err, /\n\s+at /, 'no stack trace')
  const missingEnv = await run(['check', '--config', good], {})
  t.equal(missingEnv.code, 1)
  t.match(missingEnv.err, `${good}:2 oidc.clientSecret: environment variable OIDC_CLIENT_SECRET is not set`)
  const missingFile = await run(['check', '--config', join(dir, 'nope.yaml')])
  t.equal(missingFile.code, 1)
  t.match(missingFile.err, /file not found/)
})

t.test(
  'check: an anonymous client route passes, with a warning on stderr naming the route and line',
  async (t) => {
    const open = join(dir, 'open.yaml')
    writeFileSync(
      open,
      readFileSync(good, 'utf8') +
        '  - path: /api/reports\n    upstream: http://reports:8080\n    token: client\n    anonymous: true\n',
    )
    const r = await run(['check', '--config', open])
    t.equal(r.code, 0)
    t.match(r.out, `OK: ${open} (2 routes)`)
    t.match(r.err, `warning: ${open}:9 routes[1].anonymous: /api/reports serves callers without a session`)
    t.equal((await run(['check', '--config', good])).err, '', 'no warning without one')
  },
)

t.test(
  'check: a provider no frontend signs in with passes, with a warning naming it and its line',
  async (t) => {
    const unused = join(dir, 'unused.yaml')
    writeFileSync(
      unused,
      `server: { port: 3000 }
identityProviders:
  - { name: corp, issuer: https://corp.example.com, clientId: a, clientSecret: s }
  - { name: partner, issuer: https://partner.example.com, clientId: a, clientSecret: s }
session: { secret: "${'s'.repeat(32)}" }
frontends:
  - name: partners
    host: partners.example.com
    publicUrl: https://partners.example.com
    identityProviders: [partner]
    routes: [{ path: /api, upstream: http://api:8080, token: client }]
`,
    )
    const r = await run(['check', '--config', unused])
    t.equal(r.code, 0)
    t.match(
      r.err,
      `warning: ${unused}:3 identityProviders[0].name: corp is in no frontend's identityProviders`,
    )
    t.notMatch(r.out, /register at corp/, 'and no redirect URI is printed for it')
    t.match(r.out, 'redirect URI to register at partner: https://partners.example.com/auth/callback/partner')
  },
)

t.test('config path: --config beats GATEHOUSE_CONFIG beats ./routes.yaml', async (t) => {
  const viaEnv = await run(['check'], { OIDC_CLIENT_SECRET: 'x', GATEHOUSE_CONFIG: good })
  t.match(viaEnv.out, `OK: ${good}`)
  const flagWins = await run(['check', '--config', bad], { OIDC_CLIENT_SECRET: 'x', GATEHOUSE_CONFIG: good })
  t.equal(flagWins.code, 1)
  t.match(flagWins.err, bad)
  const fallback = await run(['check'], {})
  t.match(fallback.err, './routes.yaml')
})

t.test('start loads the config and hands it to the server', async (t) => {
  const r = await run(['start', '--config', good])
  t.equal(r.code, 0)
  t.equal(r.started.length, 1)
  t.equal(r.started[0]!.routes[0]!.path, '/api')
  t.same(r.digests, [configDigest(readFileSync(good))], 'with the digest its watch compares the file with')
  t.equal((await run(['start', '--config', bad])).started.length, 0, 'a bad file never starts')
})

t.test('start is told it is starting before it reads the config, so a SIGHUP then is held', async (t) => {
  const events: string[] = []
  const io = {
    stdout: () => {},
    stderr: (line: string) => void events.push(`stderr: ${line.split(':')[0]}`),
    env: { OIDC_CLIENT_SECRET: 'x' },
    starting: () => void events.push('starting'),
    start: async () => void events.push('start'),
  }
  t.equal(await main(['start', '--config', bad], io), 1)
  t.same(events.slice(0, 2), ['starting', `stderr: ${bad}`], 'before the file is read, good or bad')
  events.length = 0
  t.equal(await main(['start', '--config', good], io), 0)
  t.same(events, ['starting', 'start'])
  events.length = 0
  t.equal(await main(['check', '--config', good], io), 0)
  t.same(events, [], 'only start: a SIGHUP still ends check, as it ends any short command')
})

t.test(
  'check and start refuse a config path that is not a regular file, or is over 1 MiB, by name',
  async (t) => {
    // A device reads as an empty document, or never ends; a FIFO would block
    // (test/config/read.test.ts, test/cli/health.test.ts).
    for (const command of ['check', 'start']) {
      const device = await run([command, '--config', '/dev/null'])
      t.equal(device.code, 1, `${command}: exit 1`)
      t.same(device.started, [], `${command}: nothing started`)
      t.equal(
        device.err,
        '/dev/null is a character device, not a regular file: a config file must be a regular file or a symlink to one\n' +
          'gatehouse: /dev/null has 1 problem',
      )
    }
    const large = join(dir, 'large.yaml')
    t.teardown(() => rmSync(large))
    const text = readFileSync(good, 'utf8')
    writeFileSync(large, `${text}#${'x'.repeat(1024 * 1024 - text.length)}\n`)
    for (const command of ['check', 'start']) {
      const r = await run([command, '--config', large])
      t.equal(r.code, 1)
      t.same(r.started, [])
      t.match(r.err, `${large} is ${1024 * 1024 + 2} bytes; a config file may be at most 1 MiB`)
    }
  },
)

t.test(
  'start prints the first 50 problems of a file with thousands, then how many more; check prints them all',
  async (t) => {
    // A start's stderr goes to the log, again at each restart of a crash
    // loop: 30,000 unknown keys were 8 MiB each time.
    const many = join(dir, 'many.yaml')
    t.teardown(() => rmSync(many))
    const keys = Array.from({ length: 5_000 }, (_, i) => `unknownOption${i}: 1\n`).join('')
    writeFileSync(many, readFileSync(good, 'utf8') + keys)
    const started = await run(['start', '--config', many])
    t.equal(started.code, 1)
    t.same(started.started, [])
    const lines = started.err.split('\n')
    t.equal(lines.length, MAX_PROBLEM_LINES + 2, 'the first 50 problems, the line for the rest, the summary')
    t.equal(lines[0], `${many}:6 unknownOption0: unknown option`)
    t.equal(lines[MAX_PROBLEM_LINES - 1], `${many}:55 unknownOption49: unknown option`)
    t.equal(
      lines[MAX_PROBLEM_LINES],
      `${many}: 4950 more problems not listed here; \`gatehouse check --config ${many}\` lists them all`,
    )
    t.equal(lines[MAX_PROBLEM_LINES + 1], `gatehouse: ${many} has 5000 problems`)

    const checked = await run(['check', '--config', many])
    t.equal(checked.code, 1)
    const all = checked.err.split('\n')
    t.equal(all.length, 5_001, 'check lists every problem, then the summary')
    t.equal(all[4_999], `${many}:5005 unknownOption4999: unknown option`)
  },
)

t.test('--help, --version and unknown commands', async (t) => {
  const help = await run(['--help'])
  t.equal(help.code, 0)
  t.match(help.out, /Usage: gatehouse <command>/)
  const version = await run(['--version'])
  t.equal(version.code, 0)
  t.match(version.out, /^\d+\.\d+\.\d+$/)
  const unknown = await run(['launch'])
  t.equal(unknown.code, 2)
  t.match(unknown.err, /unknown command "launch"/)
  t.equal((await run([])).code, 2)
  t.equal((await run(['check', '--bogus'])).code, 2)
  // It once checked ./routes.yaml and said OK, for a file it never read.
  const named = await run(['check', 'staging.yaml'])
  t.equal(named.code, 2, 'a file named without --config is refused')
  t.match(
    named.err,
    /unexpected argument "staging\.yaml" \(the config file goes after --config: gatehouse check --config staging\.yaml\)/,
  )
  t.notMatch(named.out, /OK/)
  t.equal((await run(['start', 'now'])).code, 2)
})

t.test('a failing start or an unexpected error is one line, never a stack', async (t) => {
  const io = (start: () => Promise<unknown>, stdout: (line: string) => void = () => {}) => {
    const err: string[] = []
    return {
      err,
      io: { stdout, stderr: (l: string) => err.push(l), env: { OIDC_CLIENT_SECRET: 'x' }, start },
    }
  }
  const failing = io(() => Promise.reject(new Error('EADDRINUSE 0.0.0.0:3000')))
  t.equal(await main(['start', '--config', good], failing.io), 1)
  t.same(failing.err, ['gatehouse: could not start: EADDRINUSE 0.0.0.0:3000'])

  const closedPipe = io(
    async () => {},
    () => {
      throw new Error('write EPIPE')
    },
  )
  t.equal(await main(['--version'], closedPipe.io), 2)
  t.same(closedPipe.err, ['gatehouse: unexpected error: write EPIPE'])
  t.notMatch(closedPipe.err.join('\n'), '    at ')
})

t.test('the example routes.yaml at the repository root passes check', async (t) => {
  const example = fileURLToPath(new URL('../../routes.yaml', import.meta.url))
  const r = await run(['check', '--config', example], {
    OIDC_CLIENT_SECRET: 'x',
    SESSION_SECRET: 's'.repeat(32),
  })
  t.equal(r.code, 0, r.err)
  t.match(r.out, `OK: ${example} (3 routes)`)
  const unset = await run(['check', '--config', example], {})
  t.equal(unset.code, 1)
  t.match(unset.err, /oidc\.clientSecret: environment variable OIDC_CLIENT_SECRET is not set/)
  t.match(unset.err, /session\.secret: environment variable SESSION_SECRET is not set/)
})

t.test('check: validates the Sentinel and Cluster forms of session.store without connecting', async (t) => {
  const withStore = (name: string, store: string) => {
    const file = join(dir, `${name}.yaml`)
    writeFileSync(
      file,
      `server: { publicUrl: https://app.example.com }
oidc: { issuer: https://idp.example.com, clientId: a, clientSecret: x }
session:
  secret: "${'s'.repeat(32)}"
  store: "${store}"
routes:
  - { path: /api, upstream: http://api:8080 }
`,
    )
    return file
  }
  const sentinel = await run([
    'check',
    '-c',
    withStore('sentinel', 'redis+sentinel://10.9.9.1:26379,10.9.9.2:26379/main/1'),
  ])
  t.equal(sentinel.code, 0, sentinel.err)
  const cluster = await run([
    'check',
    '-c',
    withStore('cluster', 'rediss+cluster://:pw@10.9.9.1:6379,10.9.9.2:6379'),
  ])
  t.equal(cluster.code, 0, cluster.err)
  const broken = withStore('broken', 'redis+sentinel://10.9.9.1:26379')
  const r = await run(['check', '-c', broken])
  t.equal(r.code, 1)
  t.match(r.err, `${broken}:5 session.store: needs the master name`)
})
