import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { type DevIdpOptions, startDevIdp } from '../../dev/idp.js'
import { main } from '../../src/cli/main.js'

/** Where the configs are written: a file a config names relatively (`clientKey: { file: … }`) goes here too. */
export const CHECK_DIR = mkdtempSync(join(tmpdir(), 'gatehouse-check-online-'))
let n = 0

/** What a `gatehouse` run printed, each stream's lines joined, and its exit code. */
export interface CliRun {
  readonly code: number
  readonly out: string
  readonly err: string
}

/** `gatehouse check --online` on the config `yaml`, written to a file of its own. */
export async function runCheckOnline(yaml: string): Promise<CliRun> {
  const file = join(CHECK_DIR, `routes-${++n}.yaml`)
  writeFileSync(file, yaml)
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

/**
 * `gatehouse check --online` on a config for `issuer`, client `gatehouse`,
 * with `oidcExtra` YAML lines under `oidc` (by default its secret,
 * `s3cret`), and `routes`. The default `timeout` is long because the dev IdP
 * answers from the test's own event loop, which a loaded machine holds for
 * over a second; a test that means to time out passes its own.
 */
export function checkOnline(
  issuer: string,
  oidcExtra = '  clientSecret: s3cret',
  { routes = '[]', timeout = '30s' }: { routes?: string; timeout?: string } = {},
): Promise<CliRun> {
  return runCheckOnline(`server: { publicUrl: http://127.0.0.1:3000 }
oidc:
  issuer: ${issuer}
  clientId: gatehouse
  timeout: ${timeout}
${oidcExtra}
session: { secret: "${'s'.repeat(32)}" }
routes: ${routes}
`)
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
