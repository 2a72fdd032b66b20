import { spawn, spawnSync } from 'node:child_process'
import autocannon from 'autocannon'

export type LoadTool = 'wrk' | 'autocannon'

export interface LoadSpec {
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly connections: number
  /** Seconds of load; ignored when `amount` is set. */
  readonly duration: number
  /** A fixed number of requests instead of a duration (autocannon only): the smoke run. */
  readonly amount?: number
  /** `Cookie` headers taken in turn, one per request (autocannon only): many sessions at once. */
  readonly cookies?: readonly string[]
}

export interface LoadResult {
  readonly requestsPerSecond: number
  /** Milliseconds. */
  readonly p50: number
  readonly p99: number
  readonly requests: number
  /** Non-2xx answers plus socket errors and timeouts: any of them spoils the round. */
  readonly failures: number
}

/** wrk when it is on PATH (less CPU for the same load), else autocannon. */
export function defaultTool(): LoadTool {
  return spawnSync('wrk', ['--version']).error ? 'autocannon' : 'wrk'
}

export function runLoad(tool: LoadTool, spec: LoadSpec): Promise<LoadResult> {
  return tool === 'wrk' && spec.amount === undefined && spec.cookies === undefined
    ? runWrk(spec)
    : runAutocannon(spec)
}

async function runAutocannon(spec: LoadSpec): Promise<LoadResult> {
  const result = await autocannon({
    url: spec.url,
    headers: { ...spec.headers },
    connections: spec.connections,
    pipelining: 1,
    ...(spec.amount === undefined ? { duration: spec.duration } : { amount: spec.amount }),
    ...(spec.cookies ? { requests: [{ setupRequest: rotating(spec.cookies) }] } : {}),
  })
  const seconds = result.duration || 1
  return {
    requestsPerSecond: spec.amount === undefined ? result.requests.average : result.requests.total / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
    failures: result.non2xx + result.errors + result.timeouts,
  }
}

/** Gives each request the next of `cookies`, so the load spreads over that many sessions. */
function rotating(cookies: readonly string[]) {
  let next = 0
  return <R extends { headers?: object | undefined }>(request: R): R => {
    const cookie = cookies[next++ % cookies.length]!
    return { ...request, headers: { ...request.headers, cookie } }
  }
}

/** `wrk -t1 -c<n> --latency`, as in the reference figures. */
async function runWrk(spec: LoadSpec): Promise<LoadResult> {
  const args = ['-t1', `-c${spec.connections}`, `-d${spec.duration}s`, '--latency']
  for (const [name, value] of Object.entries(spec.headers)) args.push('-H', `${name}: ${value}`)
  args.push(spec.url)
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'inherit'] })
    let text = ''
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString()
    })
    child.on('error', reject)
    // 'close', not 'exit': Node may report the exit before it has read the
    // last of the output, and the report is the last of it.
    child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited with ${code}`))))
  })
  const number = (pattern: RegExp) => {
    const match = pattern.exec(output)
    return match ? Number(match[1]) : 0
  }
  const latency = (pattern: RegExp) => {
    const match = pattern.exec(output)
    if (!match) throw new Error(`no latency line in wrk's output:\n${output}`)
    const unit = match[2]
    const scale = unit === 'us' ? 1e-3 : unit === 's' ? 1e3 : unit === 'm' ? 60e3 : 1
    return Number(match[1]) * scale
  }
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output)
  return {
    requestsPerSecond: number(/Requests\/sec:\s+([\d.]+)/),
    p50: latency(/^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$/m),
    p99: latency(/^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$/m),
    requests: number(/(\d+) requests in/),
    failures:
      number(/Non-2xx or 3xx responses: (\d+)/) +
      (socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0),
  }
}
