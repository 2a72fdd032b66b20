import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { type DevIdpOptions, startDevIdp } from '../../dev/idp.js'
import { main } from '../../src/cli/main.js'

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-check-online-'))
let n = 0

/** What a `gatehouse` run printed, each stream's lines joined, and its exit code. */
export interface CliRun {
  readonly code: number
  readonly out: string
  readonly err: string
}

/**
 * `gatehouse check --online` on a config for `issuer`, client `gatehouse`
 * with secret `s3cret`, and `oidcExtra` YAML lines under `oidc`.
 */
export async function checkOnline(issuer: string, oidcExtra = ''): Promise<CliRun> {
  const file = join(dir, `routes-${++n}.yaml`)
  writeFileSync(
    file,
    `server: { publicUrl: http://127.0.0.1:3000 }
oidc:
  issuer: ${issuer}
  clientId: gatehouse
  clientSecret: s3cret
  timeout: 2s
${oidcExtra}
session: { secret: "${'s'.repeat(32)}" }
routes: []
`,
  )
  const out: string[] = []
  const err: string[] = []
  const code = await main(['check', '--online', '--config', file], {
    stdout: (l) => out.push(l),
    stderr: (l) => err.push(l),
    env: {},
    start: async () => {
      throw new Error('check never starts the gateway')
    },
  })
  return { code, out: out.join('\n'), err: err.join('\n') }
}

/** The dev IdP with the client `checkOnline` configures registered; closed at the end of `t`. */
export async function devIdpForCheck(t: Test, options: Partial<DevIdpOptions> = {}) {
  const started = await startDevIdp({
    ...options,
    clients: [
      {
        clientId: 'gatehouse',
        clientSecret: 's3cret',
        redirectUris: ['http://127.0.0.1:3000/auth/callback'],
      },
    ],
  })
  t.teardown(() => started.close())
  return started
}
