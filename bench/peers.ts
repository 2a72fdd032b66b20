import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const script = fileURLToPath(new URL('./peer-process.ts', import.meta.url))

export interface PeerProcess {
  readonly url: string
  /** A gateway peer's metrics listener, e.g. `http://127.0.0.1:40123/metrics`. */
  readonly metricsUrl: string | undefined
  readonly pid: number
  /** Moves a gateway peer's clock forward (the refresh storm); resolves once it has. */
  advance(ms: number): Promise<void>
  /**
   * A gateway peer makes `count` more sessions like the one `cookie` opens
   * (same tokens, each with a key of its own) and answers their cookies.
   */
  clone(cookie: string, count: number): Promise<string[]>
  /**
   * Starts V8's CPU profiler in the peer, or with `heap` its sampling heap
   * profiler; `stop` answers the profile (`.cpuprofile` or `.heapprofile` JSON).
   */
  profile(action: 'start' | 'stop', kind?: 'cpu' | 'heap'): Promise<string | undefined>
  /** The peer's heap and external memory after a full collection, bytes. */
  live(): Promise<number>
  stop(): Promise<void>
}

export interface SpawnOptions {
  readonly env?: NodeJS.ProcessEnv
  /** Extra Node flags for this peer, such as `--cpu-prof`. */
  readonly nodeFlags?: readonly string[]
  /** Where the peer's stdout goes; Gatehouse's access log is there. Default: discarded. */
  readonly stdout?: 'ignore' | 'inherit'
  /** Another tree's `bench/peer-process.ts`, to run that version of a peer (`bench/versus.ts`). */
  readonly script?: string
}

/** Starts `bench/peer-process.ts <args>` and resolves with its URL once it listens. */
export function spawnPeer(args: readonly string[], options: SpawnOptions = {}): Promise<PeerProcess> {
  const child = fork(options.script ?? script, args, {
    execArgv: ['--import', 'tsx', ...(options.nodeFlags ?? [])],
    env: { ...process.env, ...options.env },
    stdio: ['ignore', options.stdout ?? 'ignore', 'inherit', 'ipc'],
  })
  return new Promise((resolve, reject) => {
    const early = (code: number | null) =>
      reject(new Error(`peer ${args[0]} exited with ${code} before it was ready`))
    child.once('exit', early)
    child.once('error', reject)
    child.once('message', (message: { ready?: string; metrics?: string; failed?: string; code?: string }) => {
      if (message.failed !== undefined) {
        child.off('exit', early)
        return reject(
          Object.assign(new Error(`peer ${args[0]} could not start: ${message.failed}`), {
            code: message.code,
          }),
        )
      }
      if (!message.ready) return reject(new Error(`peer ${args[0]} said ${JSON.stringify(message)}`))
      child.off('exit', early)
      resolve(handle(child, message.ready, message.metrics))
    })
  })
}

function handle(child: ChildProcess, url: string, metricsUrl: string | undefined): PeerProcess {
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return {
    url,
    metricsUrl,
    pid: child.pid ?? 0,
    advance(ms) {
      return new Promise((resolve) => {
        child.once('message', () => resolve())
        child.send({ advance: ms })
      })
    },
    clone(cookie, count) {
      return new Promise((resolve) => {
        child.once('message', (message: { cloned: string[] }) => resolve(message.cloned))
        child.send({ clone: { cookie, count } })
      })
    },
    profile(action, kind = 'cpu') {
      return new Promise((resolve) => {
        child.once('message', (message: { profile?: string }) => resolve(message.profile))
        child.send({ profile: action, kind })
      })
    },
    live() {
      return new Promise((resolve) => {
        const answer = (message: { live?: number }) => {
          if (message.live === undefined) return
          child.off('message', answer)
          resolve(message.live)
        }
        child.on('message', answer)
        child.send({ live: true })
      })
    },
    async stop() {
      if (child.exitCode !== null) return
      child.send({ stop: true })
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(killer)
    },
  }
}
