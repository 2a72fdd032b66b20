import type { Test } from 'tap'
import { TestClock } from './gateway.js'
import { type Stack, type StackOptions, startStack } from './stack.js'

/** One JSON log line of the gateway. */
export interface LogLine {
  readonly level: number
  readonly msg: string
  readonly [field: string]: unknown
}

export interface ObservedStack extends Stack {
  readonly clock: TestClock
  /** Every line the gateway logged, at `info` and above, parsed. */
  readonly lines: LogLine[]
  /** The `/metrics` lines whose name starts with `prefix`. */
  metrics(prefix: string): Promise<string[]>
}

/** A stack on a hand-moved clock, whose log lines and metrics the test can read. */
export async function startObservedStack(t: Test, options: StackOptions = {}): Promise<ObservedStack> {
  const clock = new TestClock()
  const lines: LogLine[] = []
  const stack = await startStack(t, {
    ...options,
    config: { logLevel: 'info', ...options.config },
    gateway: {
      now: clock.now,
      logStream: { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
      ...options.gateway,
    },
  })
  return {
    ...stack,
    clock,
    lines,
    async metrics(prefix) {
      const text = await stack.gateway.app.gatehouse.metrics.registry.metrics()
      return text.split('\n').filter((l) => l.startsWith(prefix))
    },
  }
}
