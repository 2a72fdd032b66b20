/**
 * `gatehouse dev-idp` from an installation of this checkout (dist/), with
 * and without the oidc-provider package. Apart from dev-idp-login.test.ts
 * because building the two trees takes most of a minute on a loaded
 * machine, which with the first hour's sign-ins brought that file within
 * reach of tap's 120 s timeout.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { buildTree } from '../helpers/build.js'
import { devIdpCommand } from '../helpers/dev-idp-command.js'

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-dev-idp-built-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test(
  'the built CLI, from a checkout: the dev IdP starts through tsx; without oidc-provider, one line',
  async (t) => {
    const built = join(dir, 'built')
    buildTree(built, { dev: true })
    const cli = [process.execPath, join(built, 'dist/cli/index.js')]
    const args = ['--client-id', 'a', '--redirect-uri', 'http://127.0.0.1:3000/auth/callback', '--port', '0']
    const idp = await devIdpCommand(cli, args)
    t.teardown(() => idp.stop())
    const discovery = await fetch(`${idp.issuer}/.well-known/openid-configuration`)
    t.equal(discovery.status, 200, 'it serves discovery at the printed issuer')
    t.equal(((await discovery.json()) as { issuer: string }).issuer, idp.issuer)
    t.equal(await idp.stop(), 0)

    const installed = join(dir, 'installed')
    buildTree(installed, { dev: true, without: ['oidc-provider'] })
    const child = spawn(process.execPath, [join(installed, 'dist/cli/index.js'), 'dev-idp', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.stdout.resume()
    const [code] = await once(child, 'exit')
    t.equal(code, 1)
    t.match(
      stderr,
      /^gatehouse dev-idp is for development only and needs the oidc-provider and tsx packages[^\n]*\n$/,
    )
  },
)
