import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startDevIdp } from '../../dev/idp.js'
import { startEchoUpstream } from '../../dev/upstream.js'
import { typescriptFlags } from '../helpers/child-node.js'
import { CLIENT_ID, CLIENT_SECRET, SESSION_SECRET } from '../helpers/gateway.js'

/** Long enough for any machine to start the gateway; one that never says what is awaited fails, it does not hang. */
const BOUND_MS = 20_000

t.test(
  'a SIGHUP while the gateway starts does not end it: it starts, then reloads, and drains on SIGTERM',
  async (t) => {
    const idp = await startDevIdp({
      clients: [
        {
          clientId: CLIENT_ID,
          clientSecret: CLIENT_SECRET,
          redirectUris: ['http://127.0.0.1/auth/callback'],
        },
      ],
    })
    t.teardown(() => idp.close())
    const upstream = await startEchoUpstream()
    t.teardown(() => upstream.close())
    const file = join(mkdtempSync(join(tmpdir(), 'gatehouse-sighup-')), 'routes.yaml')
    // drainTimeout shorter than the route's timeout is a warning: the first
    // line the CLI prints, once it has read the config and before it
    // builds the gateway and listens. Node may hand the signal to JavaScript
    // only once the start's synchronous stretches are over, so whether it
    // is heard as held or by the running gateway's handler is not fixed:
    // what is, is that it does not end the process and that it reloads.
    writeFileSync(
      file,
      `server: { host: 127.0.0.1, port: 0, publicUrl: "http://127.0.0.1", drainTimeout: 1s }
oidc: { issuer: "${idp.issuer}", clientId: ${CLIENT_ID}, clientSecret: "\${OIDC_CLIENT_SECRET}" }
session: { secret: "\${SESSION_SECRET}" }
metrics: { enabled: false }
logging: { level: info }
routes:
  - { path: /api/public, upstream: "${upstream.url}", token: none, csrf: false }
`,
    )
    // tap preloads its process-info module into every child through
    // NODE_OPTIONS, whatever env the child is given, and that module listens
    // for SIGHUP (signal-exit): such a child never meets SIGHUP's default
    // action, which is what this test is about. `env -u` takes it out, so
    // the CLI runs as it runs in production.
    const child = spawn(
      'env',
      [
        '-u',
        'NODE_OPTIONS',
        process.execPath,
        ...typescriptFlags,
        'src/cli/index.ts',
        'start',
        '--config',
        file,
      ],
      {
        env: { ...process.env, OIDC_CLIENT_SECRET: CLIENT_SECRET, SESSION_SECRET },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    })
    let output = ''
    const waiters: (() => void)[] = []
    const hear = (data: Buffer) => {
      output += data.toString()
      for (const waiter of [...waiters]) waiter()
    }
    child.stdout.on('data', hear)
    child.stderr.on('data', hear)
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.once('exit', (code, signal) => resolve([code, signal])),
    )
    /** Resolves once the output matches `pattern`, or with `exited` if the process ends first. */
    const printed = (what: string, pattern: RegExp) =>
      Promise.race([
        exited.then(([code, signal]) => `exited (code ${code}, signal ${signal}) before: ${what}`),
        new Promise<string>((resolve, reject) => {
          const bound = setTimeout(
            () => reject(new Error(`not printed within ${BOUND_MS} ms: ${what}`)),
            BOUND_MS,
          )
          const check = () => {
            if (!pattern.test(output)) return
            clearTimeout(bound)
            waiters.splice(waiters.indexOf(check), 1)
            resolve('printed')
          }
          waiters.push(check)
          check()
        }),
      ])

    t.equal(await printed('the config warning', /^warning: /m), 'printed')
    // Whether the child is still starting when the SIGHUP lands is up to
    // the scheduler: a loaded machine can hold this process while the child
    // listens, and its stdout can then be read before its stderr warning.
    // Holding a SIGHUP until the gateway listens has its own test, with no
    // race, in test/server/start.test.ts; this one is about the process.
    t.comment(/Server listening/.test(output) ? 'SIGHUP after listening' : 'SIGHUP before listening was seen')
    child.kill('SIGHUP')

    t.equal(await printed('the startup line', /gatehouse listening on/), 'printed', 'it started')
    t.equal(
      await printed('the reload', /"trigger":"SIGHUP".*the file holds the running config; nothing to do/),
      'printed',
      'and reloaded, as the SIGHUP asked',
    )
    t.same([child.exitCode, child.signalCode], [null, null], 'still running')

    child.kill('SIGTERM')
    t.same(await exited, [0, null], 'and ends as it should: drained, exit 0')
  },
)
