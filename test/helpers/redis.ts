import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './gateway.js'

export interface TestRedis {
  readonly url: string
  /** A key prefix of its own, so tests sharing a REDIS_URL never collide. */
  readonly prefix: string
  /** Kills the server (connections refused) until `restart`; its data survives via the AOF. */
  kill(): Promise<void>
  restart(): Promise<void>
  /** Freezes the server (connections hang) until `resume`. */
  freeze(): void
  resume(): void
  stop(): Promise<void>
}

let counter = 0

/**
 * A real redis-server for one test file, on a free port, with an
 * append-only file so a kill and restart keeps its data; or, when
 * REDIS_URL is set, that server with a unique prefix (and no fault
 * injection, which needs a server of our own).
 */
export async function startRedis(): Promise<TestRedis> {
  const prefix = `gh-test-${process.pid}-${++counter}:`
  if (process.env.REDIS_URL) {
    const url = process.env.REDIS_URL
    const unsupported = async () => {
      throw new Error('fault injection needs a redis-server started by the tests; unset REDIS_URL')
    }
    return {
      url,
      prefix,
      kill: unsupported,
      restart: unsupported,
      freeze() {},
      resume() {},
      stop: async () => {},
    }
  }
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-redis-'))
  let child: ChildProcess | undefined

  const launch = () =>
    new Promise<void>((resolve, reject) => {
      const proc = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'yes',
          '--appendfsync',
          'always',
          '--dir',
          dir,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      )
      child = proc
      let output = ''
      const onData = (chunk: Buffer) => {
        output += chunk.toString()
        if (output.includes('Ready to accept connections')) {
          proc.stdout!.off('data', onData)
          resolve()
        }
      }
      proc.stdout!.on('data', onData)
      proc.once('error', (err) =>
        reject(
          new Error(
            `cannot start redis-server (${err.message}); install it with apt-get install redis-server`,
          ),
        ),
      )
      proc.once('exit', (code) =>
        reject(new Error(`redis-server exited with ${code}: ${output.slice(-500)}`)),
      )
    })

  const kill = async () => {
    const proc = child
    if (!proc || proc.exitCode !== null) return
    proc.kill('SIGCONT')
    await new Promise<void>((resolve) => {
      proc.removeAllListeners('exit')
      proc.once('exit', () => resolve())
      proc.kill('SIGKILL')
    })
  }
  await launch()
  return {
    url: `redis://127.0.0.1:${port}/0`,
    prefix,
    kill,
    restart: launch,
    freeze: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    async stop() {
      await kill()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Polls a condition until it holds or the deadline passes: for recovery, which has no event to await. */
export async function pollUntil(check: () => Promise<boolean>, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs
  while (Date.now() < end) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`condition not met within ${deadlineMs} ms`)
}
