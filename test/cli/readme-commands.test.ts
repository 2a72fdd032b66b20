import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { buildTree } from '../helpers/build.js'
import { SESSION_SECRET } from '../helpers/gateway.js'
import { REFUSED_URL } from '../helpers/ports.js'
import { pollUntil } from '../helpers/within.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const readme = readFileSync(join(root, 'README.md'), 'utf8')
/** The shell block a new user copies to run Gatehouse from a checkout. */
const block = /To run Gatehouse itself from a checkout:\n\n```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? ''
const commands = block
  .split('\n')
  .map((line) => line.replace(/\s+#.*$/, '').trim())
  .filter(Boolean)
const check = commands.find((c) => c.startsWith('npm run check'))
const start = commands.find((c) => c.startsWith('npm start'))

// A tree holding only what `npm run build` and a clone give: package.json,
// routes.yaml and dist/, built here so a stale dist/ of the checkout cannot
// pass for a working one. buildTree compiles src/ file by file, as
// `npm run build` does without its type check, which CI runs on its own.
const tree = mkdtempSync(join(tmpdir(), 'gatehouse-readme-'))
t.teardown(() => rmSync(tree, { recursive: true, force: true }))
buildTree(tree)
copyFileSync(join(root, 'routes.yaml'), join(tree, 'routes.yaml'))

const env = {
  ...process.env,
  OIDC_CLIENT_SECRET: 'a-client-secret',
  SESSION_SECRET,
  npm_config_update_notifier: 'false',
}

t.test('the README builds, then checks and starts with commands that work as written', async (t) => {
  t.same(commands.slice(0, 2), [
    'npm run build',
    'export OIDC_CLIENT_SECRET=... SESSION_SECRET=$(openssl rand -base64 48)',
  ])
  t.ok(check && start, `the block names a check and a start command: ${JSON.stringify(commands)}`)
  t.notMatch(block, /npx gatehouse/, 'npx gatehouse only works once the package is installed')
})

t.test('the README check command validates routes.yaml: OK, exit 0', async (t) => {
  const out = execFileSync('bash', ['-c', check!], { cwd: tree, env, encoding: 'utf8' })
  t.match(out, /OK: routes\.yaml \(\d+ routes?\)/)
})

t.test('the README start command serves /healthz, and SIGTERM ends it', async (t) => {
  const child = spawn('bash', ['-c', start!], {
    cwd: tree,
    // No IdP: start must listen anyway and keep retrying discovery. Port 0
    // for both listeners: the startup line says which port it got.
    env: { ...env, PORT: '0', METRICS_PORT: '0', OIDC_ISSUER: REFUSED_URL },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  let output = ''
  const collect = (d: Buffer) => {
    output += d.toString()
  }
  child.stdout.on('data', collect)
  child.stderr.on('data', collect)
  const exited = once(child, 'exit')
  // bash may exit before the gateway it started has logged its shutdown:
  // the pipes close only once every process writing to them has exited.
  const closed = Promise.all([once(child.stdout, 'close'), once(child.stderr, 'close')])
  t.teardown(() => {
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL')
  })
  await pollUntil(async () => output.includes('gatehouse listening'), 30_000)
  const port = /gatehouse listening on http:\/\/[^\s/]+:(\d+)/.exec(output)?.[1]
  t.ok(port, 'the startup line names the port')
  const health = await fetch(`http://127.0.0.1:${port}/healthz`)
  t.equal(health.status, 200)
  process.kill(-child.pid!, 'SIGTERM')
  await Promise.all([exited, closed])
  t.match(output, /shutting down/)
  t.notMatch(output, /\n\s+at /, 'no stack trace')
})
