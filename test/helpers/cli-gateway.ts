import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { startDevIdp } from '../../dev/idp.js'
import { type EchoUpstream, startEchoUpstream } from '../../dev/upstream.js'
import { typescriptFlags } from './child-node.js'
import { CLIENT_ID, CLIENT_SECRET, SESSION_SECRET } from './gateway.js'
import { pollUntil } from './within.js'

/** A `gatehouse start` process, as `startCli` leaves it. */
export interface CliGateway {
  readonly child: ChildProcess
  readonly upstream: EchoUpstream
  /** The address the startup line names. */
  readonly url: string | undefined
  /** Everything the process has written so far, stdout and stderr. */
  output(): string
  /** Its exit code and signal, once it has exited. */
  readonly exited: Promise<unknown[]>
}

const LISTENING = /gatehouse listening on (http:\/\/127\.0\.0\.1:\d+)/

/**
 * `gatehouse start` as a process of its own, with a public route to an echo
 * upstream, once it is listening and has discovered its IdP. No one signs
 * in: the IdP needs no real redirect URI, and the gateway binds port 0 and
 * says in its startup line which port it got.
 */
export async function startCli(
  t: Test,
  extraConfig = '',
  env: NodeJS.ProcessEnv = {},
  serverExtra = '',
  routesExtra = '',
): Promise<CliGateway> {
  const idp = await startDevIdp({
    clients: [
      { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: ['http://127.0.0.1/auth/callback'] },
    ],
  })
  t.teardown(() => idp.close())
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  const file = join(mkdtempSync(join(tmpdir(), 'gatehouse-shutdown-')), 'routes.yaml')
  writeFileSync(
    file,
    `server: { host: 127.0.0.1, port: 0, publicUrl: "http://127.0.0.1"${serverExtra} }
oidc: { issuer: "${idp.issuer}", clientId: ${CLIENT_ID}, clientSecret: "\${OIDC_CLIENT_SECRET}" }
session: { secret: "\${SESSION_SECRET}" }
metrics: { port: 0 }
${extraConfig}
routes:
  - { path: /api/public, upstream: "${upstream.url}", token: none, csrf: false }
${routesExtra}
`,
  )
  const child = spawn(process.execPath, [...typescriptFlags, 'src/cli/index.ts', 'start', '--config', file], {
    env: { ...process.env, OIDC_CLIENT_SECRET: CLIENT_SECRET, SESSION_SECRET, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const collect = (d: Buffer) => {
    output += d.toString()
  }
  child.stdout.on('data', collect)
  child.stderr.on('data', collect)
  const exited = once(child, 'exit')
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  // The two lines come in either order.
  await pollUntil(async () => output.includes('OpenID Provider discovered') && LISTENING.test(output), 20_000)
  return { child, upstream, url: LISTENING.exec(output)?.[1], output: () => output, exited }
}
