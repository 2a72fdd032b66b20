import { readFileSync } from 'node:fs'
import t from 'tap'
import { DEV_IDP_PORT, devIdp } from '../../src/cli/dev-idp.js'

type Started = Parameters<
  NonNullable<Parameters<typeof devIdp>[1]['load']> extends () => Promise<infer M>
    ? M extends { startDevIdp: infer F }
      ? F
      : never
    : never
>[0]

/** The command with dev/idp.ts stood in for: what it was asked to start, and what it printed. */
async function run(argv: string[], env: NodeJS.ProcessEnv = {}, startError?: NodeJS.ErrnoException) {
  const out: string[] = []
  const err: string[] = []
  const started: Started[] = []
  const code = await devIdp(argv, {
    stdout: (line) => out.push(line),
    stderr: (line) => err.push(line),
    env,
    handleSignals: false,
    load: async () => ({
      async startDevIdp(options) {
        if (startError) throw startError
        started.push(options)
        return { issuer: `http://${options.host}:${options.port || 40123}`, close: async () => {} }
      },
    }),
  })
  return { code, out: out.join('\n'), err: err.join('\n'), started }
}

const CALLBACK = 'http://localhost:3000/auth/callback'

t.test(
  'registers the client as asked, on loopback, strict by default, and prints the oidc: block',
  async (t) => {
    const r = await run(['--client-id', 'my-app', '--redirect-uri', CALLBACK])
    t.equal(r.code, 0)
    t.equal(r.err, '')
    const [options] = r.started
    t.match(options, {
      profile: 'strict',
      host: '127.0.0.1',
      port: DEV_IDP_PORT,
      clients: [
        { clientId: 'my-app', redirectUris: [CALLBACK], postLogoutRedirectUris: ['http://localhost:3000/'] },
      ],
    })
    const secret = options!.clients[0]!.clientSecret
    t.ok(secret.length >= 32, 'a random secret')
    t.match(r.out, /^gatehouse dev-idp: DEVELOPMENT ONLY\. /, 'it says so first')
    t.match(
      r.out,
      [
        'oidc:',
        '  issuer: http://127.0.0.1:4000',
        '  clientId: my-app',
        '  clientSecret: ${OIDC_CLIENT_SECRET}',
        '  authorizationParams: { prompt: consent }',
      ].join('\n'),
    )
    t.match(r.out, `\nexport OIDC_CLIENT_SECRET=${secret}\n`, 'the secret once, as an environment line')
    t.equal(r.out.split(secret).length, 2, 'and nowhere else')
  },
)

t.test('lenient needs no prompt=consent; the secret comes from the option or the environment', async (t) => {
  const lenient = await run(['--client-id', 'a', '--redirect-uri', CALLBACK, '--profile', 'lenient'])
  t.notMatch(lenient.out, /authorizationParams/)
  t.equal(lenient.started[0]!.profile, 'lenient')
  const given = await run(['--client-id', 'a', '--redirect-uri', CALLBACK, '--client-secret', "it's secret"])
  t.equal(given.started[0]!.clients[0]!.clientSecret, "it's secret")
  t.match(given.out, `export OIDC_CLIENT_SECRET='it'\\''s secret'`, 'quoted for the shell')
  const fromEnv = await run(['--client-id', 'a', '--redirect-uri', CALLBACK], {
    OIDC_CLIENT_SECRET: 'from-env',
  })
  t.equal(fromEnv.started[0]!.clients[0]!.clientSecret, 'from-env', 'the secret Gatehouse already has')
})

t.test('several redirect URIs, explicit post-logout URIs, port, host and TTL', async (t) => {
  const r = await run([
    '--client-id',
    'a',
    '--redirect-uri',
    CALLBACK,
    '--redirect-uri',
    'http://127.0.0.1:3001/auth/callback',
    '--post-logout-redirect-uri',
    'http://localhost:3000/bye',
    '--port',
    '0',
    '--host',
    'localhost',
    '--access-token-ttl',
    '20',
  ])
  t.equal(r.code, 0, r.err)
  t.match(r.started[0], {
    port: 0,
    host: 'localhost',
    accessTokenTtl: 20,
    clients: [
      {
        redirectUris: [CALLBACK, 'http://127.0.0.1:3001/auth/callback'],
        postLogoutRedirectUris: ['http://localhost:3000/bye'],
      },
    ],
  })
  const elsewhere = await run(['--client-id', 'a', '--redirect-uri', CALLBACK, '--host', '192.0.2.10'])
  t.match(elsewhere.out, /WARNING: listening on 192\.0\.2\.10, not loopback/)
})

t.test('bad usage: the problem, then the usage, exit 2, nothing started', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--redirect-uri', CALLBACK], /--client-id is required/],
    [['--client-id', 'a'], /--redirect-uri is required/],
    [['--client-id', 'a', '--redirect-uri', '/auth/callback'], /--redirect-uri must be an absolute URL/],
    [['--client-id', 'a', '--redirect-uri', 'ftp://x/cb'], /must be an http or https URL/],
    [['--client-id', 'a', '--redirect-uri', CALLBACK, '--port', '4.5'], /--port must be an integer/],
    [['--client-id', 'a', '--redirect-uri', CALLBACK, '--host', '0.0.0.0'], /--host must be an address/],
    [['--client-id', 'a', '--redirect-uri', CALLBACK, '--profile', 'loose'], /--profile must be strict/],
    [['--client-id', 'a', '--redirect-uri', CALLBACK, '--colour', 'blue'], /Unknown option '--colour'/],
  ]
  for (const [argv, problem] of cases) {
    const r = await run(argv)
    t.equal(r.code, 2, argv.join(' '))
    t.match(r.err, problem)
    t.match(r.err, /Usage: gatehouse dev-idp/)
    t.same(r.started, [])
  }
  const help = await run(['--help'])
  t.equal(help.code, 0)
  t.match(help.out, /DEVELOPMENT-ONLY/)
})

t.test('a port in use: one line naming --port; any other failure: one line', async (t) => {
  const busy = await run(
    ['--client-id', 'a', '--redirect-uri', CALLBACK],
    {},
    Object.assign(new Error('listen EADDRINUSE: address already in use 127.0.0.1:4000'), {
      code: 'EADDRINUSE',
    }),
  )
  t.equal(busy.code, 1)
  t.equal(busy.err, 'gatehouse dev-idp: port 4000 is in use; choose another with --port, e.g. --port 4010')
  const other = await run(['--client-id', 'a', '--redirect-uri', CALLBACK], {}, new Error('boom'))
  t.equal(other.err, 'gatehouse dev-idp: could not start: boom')
})

t.test('without its development packages: one line saying what it is for and how to get them', async (t) => {
  const missing = (message: string) =>
    devIdp(['--client-id', 'a', '--redirect-uri', CALLBACK], {
      stdout: () => {},
      stderr: (line) => lines.push(line),
      env: {},
      handleSignals: false,
      load: async () => {
        throw Object.assign(new Error(message), { code: 'ERR_MODULE_NOT_FOUND' })
      },
    })
  const lines: string[] = []
  t.equal(await missing("Cannot find package 'oidc-provider' imported from /app/dev/idp.ts"), 1)
  t.equal(await missing("Cannot find module '/app/dev/idp.ts'"), 1)
  t.equal(lines.length, 2, 'one line each')
  t.match(
    lines[0],
    /^gatehouse dev-idp is for development only and needs the oidc-provider and tsx packages.*npm install --save-dev oidc-provider tsx/,
  )
  t.match(
    lines[1],
    /^gatehouse dev-idp is for development only and this installation does not include it.*npm run dev-idp/,
  )
  await t.rejects(
    missing("Cannot find package 'left-pad' imported from /app/dev/idp.ts"),
    /left-pad/,
    'anything else is not hidden',
  )
})

t.test('the README’s dev-idp command runs as written and prints what the README shows', async (t) => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const section = readme.slice(readme.indexOf('### Signing in through your own config'))
  const command = /```sh\n(npm run dev-idp -- .*)\n```/.exec(section)?.[1]
  t.ok(command, 'the section has the command')
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
  t.equal(pkg.scripts['dev-idp'], 'tsx src/cli/index.ts dev-idp', 'npm run dev-idp is the CLI command')
  const r = await run(command!.split(' ').slice(4), { OIDC_CLIENT_SECRET: '' })
  t.equal(r.code, 0, r.err)
  const shown = /```text\n([\s\S]*?)```/.exec(section)?.[1] ?? ''
  const lines = shown.split('\n').filter((line) => line && line !== '…' && !line.endsWith('=…'))
  t.ok(lines.length >= 8, `${lines.length} lines shown`)
  const issuerAs = (text: string) => text.replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT')
  for (const line of lines) t.ok(issuerAs(r.out).split('\n').includes(issuerAs(line)), line)
  t.match(shown, /^export OIDC_CLIENT_SECRET=…$/m)
})
