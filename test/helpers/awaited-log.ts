/** One JSON log line of the gateway, parsed. */
export type Line = Record<string, unknown>

export interface AwaitedLog {
  /** Every line written so far. */
  readonly lines: Line[]
  /** The gateway's `logStream`. */
  readonly logStream: { write(text: string): void }
  /** The first line `match` takes, written already or yet to be: no polling. */
  logged(match: (line: Line) => boolean): Promise<Line>
}

/** A log stream whose lines a test can wait for, as the gateway writes them. */
export function awaitedLog(): AwaitedLog {
  const lines: Line[] = []
  const waiters = new Set<{ match: (line: Line) => boolean; resolve: (line: Line) => void }>()
  return {
    lines,
    logStream: {
      write(text) {
        const line = JSON.parse(text) as Line
        lines.push(line)
        for (const waiter of [...waiters])
          if (waiter.match(line)) {
            waiters.delete(waiter)
            waiter.resolve(line)
          }
      },
    },
    logged: (match) =>
      new Promise<Line>((resolve) => {
        const found = lines.find(match)
        if (found) resolve(found)
        else waiters.add({ match, resolve })
      }),
  }
}
