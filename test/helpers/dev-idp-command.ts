import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))

/** What `gatehouse dev-idp` printed, read as a user copies it, and its process. */
export interface Printed {
  readonly child: ChildProcess
  readonly stdout: string
  /** The `oidc:` block, as printed. */
  readonly block: string
  /** From the `export OIDC_CLIENT_SECRET=…` line. */
  readonly secret: string
  readonly issuer: string
  stop(): Promise<number | null>
}

/**
 * Runs `command dev-idp args` from the checkout until it has printed its
 * last line (or exits), and reads what a user would copy.
 */
export async function devIdpCommand(command: readonly string[], args: readonly string[]): Promise<Printed> {
  const child = spawn(command[0]!, [...command.slice(1), 'dev-idp', ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  const printed = new Promise<void>((resolve) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      if (stdout.includes('Ctrl-C stops the dev IdP.')) resolve()
    })
  })
  const bound = AbortSignal.timeout(60_000)
  const gaveUp = once(bound, 'abort').then(() => 'timeout')
  const ended = await Promise.race([printed.then(() => 'printed'), exited.then(() => 'exited'), gaveUp])
  if (ended !== 'printed') {
    child.kill('SIGKILL')
    throw new Error(`dev-idp ${ended} before it printed its config:\n${stdout}\n${stderr}`)
  }
  const block = /^oidc:\n(?: {2}.*\n)+/m.exec(stdout)?.[0] ?? ''
  return {
    child,
    stdout,
    block,
    secret: /^export OIDC_CLIENT_SECRET=(\S+)$/m.exec(stdout)?.[1] ?? '',
    issuer: /^ {2}issuer: (\S+)$/m.exec(block)?.[1] ?? '',
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM')
      return exited
    },
  }
}
