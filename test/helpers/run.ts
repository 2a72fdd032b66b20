import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { delimiter, join } from 'node:path'

export interface Ran {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Whether a command of that name is on PATH. */
export function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir && existsSync(join(dir, command)))
}

/** Runs a command to its end (or kills it at `timeoutMs`); a non-zero exit is a result, not an error. */
export function run(command: string, args: readonly string[], timeoutMs: number): Promise<Ran> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(err)
        resolve({ code: err ? (err.code as number) : 0, stdout, stderr })
      },
    )
  })
}
