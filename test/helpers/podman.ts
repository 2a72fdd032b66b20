import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Ran, run } from './run.js'

/**
 * What works on these machines: runc (not crun) and cgroupfs (no systemd).
 * .ci/image passes the same flags.
 */
const GLOBAL_FLAGS = ['--runtime', 'runc', '--cgroup-manager', 'cgroupfs']

/** The build script CI runs before the suite; it prints the image's name last. */
export const BUILD_SCRIPT = fileURLToPath(new URL('../../.ci/image', import.meta.url))

/** Runs podman with this machine's flags; resolves with its exit code and output, never rejects on a non-zero exit. */
export function podman(args: readonly string[], timeoutMs = 60_000): Promise<Ran> {
  return run('podman', [...GLOBAL_FLAGS, ...args], timeoutMs)
}

/**
 * Streams a container's whole filesystem (`podman export`, through a file:
 * podman cannot write its archive to a socket, which is what Node's pipes
 * are) through `onChunk`, and resolves with the number of bytes seen.
 */
export async function exportFilesystem(container: string, onChunk: (chunk: Buffer) => void): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-export-'))
  try {
    const file = join(dir, 'rootfs.tar')
    const ran = await podman(['export', '--output', file, container], 300_000)
    if (ran.code !== 0) throw new Error(`podman export exited ${ran.code}: ${ran.stderr}`)
    let bytes = 0
    for await (const chunk of createReadStream(file)) {
      bytes += (chunk as Buffer).length
      onChunk(chunk as Buffer)
    }
    return bytes
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * `--ulimit` values below this process's hard limits: podman's defaults are
 * above them on these machines, and the container then fails to start.
 */
export function ulimitsBelowHost(wanted: { nofile: number; nproc: number }): string[] {
  const limits = readFileSync('/proc/self/limits', 'utf8')
  const hard = (name: string, fallback: number) => {
    const value = new RegExp(`^${name}\\s+\\S+\\s+(\\S+)`, 'm').exec(limits)?.[1]
    return value === undefined || value === 'unlimited' ? fallback : Number(value)
  }
  const nofile = Math.min(wanted.nofile, hard('Max open files', wanted.nofile))
  const nproc = Math.min(wanted.nproc, hard('Max processes', wanted.nproc))
  return ['--ulimit', `nofile=${nofile}:${nofile}`, '--ulimit', `nproc=${nproc}:${nproc}`]
}
