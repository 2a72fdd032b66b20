import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { withoutCoverage } from './child-node.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

export interface ScriptRun {
  readonly code: number | null
  readonly stdout: string
  /** stdout and stderr as they arrived, for a failure message. */
  readonly output: string
}

/**
 * Runs `bench/<script>` with tsx, as `npx tsx` would, from the checkout's
 * root and without tap's coverage (its peers run through tsx whatever we
 * say; see `withoutCoverage`), and answers what it printed once it exits.
 */
export async function runBenchScript(script: string, args: readonly string[] = []): Promise<ScriptRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'bench', script), ...args], {
    cwd: root,
    env: withoutCoverage(),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString()
    output += chunk.toString()
  })
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  // 'close', not 'exit': the exit can be reported before the last output is read.
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return { code, stdout, output }
}
