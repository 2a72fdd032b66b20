/**
 * `npm run demo` is a first run: a user who signs in and calls its APIs
 * must meet no warning, or they learn to read past the gateway's warnings.
 * Its IdP's token lifetime and its `tokens.refreshBefore` are set apart
 * (demo/run.ts, demo/routes.demo.yaml); GATEHOUSE_TOKEN_LIFETIME_SHORT is
 * what they say when they disagree.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { typescriptFlags } from '../helpers/child-node.js'
import { apiCall, login } from '../helpers/login.js'
import { addressInUse, onFreePorts } from '../helpers/ports.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

interface Demo {
  readonly child: ChildProcess
  readonly url: string
  /** Everything it wrote, stdout and stderr. */
  readonly output: () => string
}

/** The demo on three free ports, once its gateway has discovered its IdP. */
function startDemo(): Promise<Demo> {
  return onFreePorts(3, async ([port, idpPort, metricsPort]) => {
    const child = spawn(process.execPath, [...typescriptFlags, 'demo/run.ts'], {
      cwd: root,
      env: {
        ...process.env,
        PORT: String(port),
        IDP_PORT: String(idpPort),
        METRICS_PORT: String(metricsPort),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    const ready = new Promise<void>((resolve, reject) => {
      const read = (chunk: Buffer) => {
        output += chunk.toString()
        if (output.includes('OpenID Provider discovered')) resolve()
      }
      child.stdout!.on('data', read)
      child.stderr!.on('data', read)
      child.once('exit', () =>
        reject(/ is in use;/.test(output) ? addressInUse(output) : new Error(`the demo exited:\n${output}`)),
      )
    })
    await ready
    return { child, url: `http://localhost:${port}`, output: () => output }
  })
}

t.test('npm run demo: sign in, call both APIs, and not one warning', async (t) => {
  const demo = await startDemo()
  t.teardown(async () => {
    if (demo.child.exitCode === null) {
      demo.child.kill('SIGTERM')
      await once(demo.child, 'exit')
    }
  })
  const { jar, callback } = await login(demo.url, { user: 'first-run' })
  t.equal(callback.status, 302, 'signed in')
  t.equal((await apiCall(jar, `${demo.url}/api/orders/1`)).status, 200, "with the user's token")
  t.equal((await apiCall(jar, `${demo.url}/api/reports/1`)).status, 200, "with the gateway's own")
  demo.child.kill('SIGTERM')
  await once(demo.child, 'exit')

  const warnings = demo
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; code?: string; msg: string })
    .filter((line) => line.level >= 40)
  t.same(warnings, [], 'no warning, GATEHOUSE_TOKEN_LIFETIME_SHORT included')
})
