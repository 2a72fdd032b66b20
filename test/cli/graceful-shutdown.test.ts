import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startDevIdp } from '../../dev/idp.js'
import { startEchoUpstream } from '../../dev/upstream.js'
import { typescriptFlags } from '../helpers/child-node.js'
import { CLIENT_ID, CLIENT_SECRET, SESSION_SECRET } from '../helpers/gateway.js'
import { pollUntil } from '../helpers/redis.js'

t.test(
  'SIGTERM during a slow upstream call, then SIGHUP: the call finishes with 200 and the process exits 0',
  async (t) => {
    // No one signs in: the IdP needs no real redirect URI, and the gateway
    // binds port 0 and says in its startup line which port it got.
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
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-shutdown-'))
    const file = join(dir, 'routes.yaml')
    writeFileSync(
      file,
      `server: { host: 127.0.0.1, port: 0, publicUrl: "http://127.0.0.1" }
oidc: { issuer: "${idp.issuer}", clientId: ${CLIENT_ID}, clientSecret: "\${OIDC_CLIENT_SECRET}" }
session: { secret: "\${SESSION_SECRET}" }
metrics: { port: 0 }
routes:
  - { path: /api/public, upstream: "${upstream.url}", token: none, csrf: false }
`,
    )
    const child = spawn(
      process.execPath,
      [...typescriptFlags, 'src/cli/index.ts', 'start', '--config', file],
      {
        env: { ...process.env, OIDC_CLIENT_SECRET: CLIENT_SECRET, SESSION_SECRET },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let output = ''
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString()
    })
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString()
    })
    const exited = once(child, 'exit')
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL')
    })
    await pollUntil(async () => output.includes('OpenID Provider discovered'), 20_000)
    t.match(
      output,
      /gatehouse listening on .*1 routes, memory store, issuer/,
      'one startup line sums up routes, store and issuer',
    )

    const url = /gatehouse listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1]
    t.ok(url, 'the startup line names the address')
    const slow = fetch(`${url}/api/public/work?delayMs=1500`)
    await pollUntil(async () => upstream.requests.some((r) => r.path.startsWith('/api/public/work')))
    child.kill('SIGTERM')
    // A reload asked for while draining (a ConfigMap tool, a script) must
    // not end the process by SIGHUP's default action mid-request.
    await pollUntil(async () => output.includes('shutting down'))
    child.kill('SIGHUP')

    const response = await slow
    t.equal(response.status, 200, 'the request in flight finished')
    const [code, signal] = await exited
    t.equal(signal, null, 'not ended by a signal')
    t.equal(code, 0, 'exit 0')
    t.match(output, /SIGHUP while shutting down: no reload/)
    t.match(output, /shutting down/)
    t.notMatch(output, /\n\s+at /, 'no stack trace')
  },
)
