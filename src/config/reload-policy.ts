import { isDeepStrictEqual } from 'node:util'
import type { GatehouseConfig } from './types.js'

/**
 * Settings read only when the process starts, each with the part that
 * holds it for the process's life. A reload that changes one is refused
 * whole: applying the rest would leave a running config that is neither
 * the file nor what runs.
 */
export const RESTART_SETTINGS: readonly (readonly [path: string, heldBy: string])[] = [
  ['server.host', 'the listening socket is bound once, at start'],
  ['server.port', 'the listening socket is bound once, at start'],
  ['server.headersTimeout', "the listener's HTTP parser settings are fixed at start"],
  ['server.requestTimeout', "the listener's HTTP parser settings are fixed at start"],
  ['server.keepAliveTimeout', "the listener's HTTP parser settings are fixed at start"],
  ['server.maxHeaderSize', "the listener's HTTP parser settings are fixed at start"],
  ['session.store', 'the session store is connected once, at start'],
  ['session.keyPrefix', 'the session store is connected once, at start'],
  ['session.idleTimeout', 'the session store is connected once, at start'],
  ['session.maxSessions', 'the session store is connected once, at start'],
  ['session.localCache', 'the session store is connected once, at start'],
  ['metrics.enabled', 'the metrics listener is bound once, at start'],
  ['metrics.host', 'the metrics listener is bound once, at start'],
  ['metrics.port', 'the metrics listener is bound once, at start'],
  ['tracing', 'the OpenTelemetry SDK and its instrumentations are started once per process'],
]

/** One setting a reload would change that only a restart can. */
export interface RestartNeeded {
  /** Option path, e.g. `server.port`. */
  readonly path: string
  /** Where the new file sets it, or the nearest option that holds it. */
  readonly line?: number
  readonly message: string
}

/**
 * The settings that differ between the running config and a new one but
 * cannot change while the process runs, in `RESTART_SETTINGS` order;
 * empty when the new config may be applied live.
 */
export function restartNeeded(
  running: GatehouseConfig,
  next: GatehouseConfig,
  lineOf: (path: readonly string[]) => number | undefined = () => undefined,
): RestartNeeded[] {
  const found: RestartNeeded[] = []
  for (const [path, heldBy] of RESTART_SETTINGS) {
    const before = at(running, path)
    const after = at(next, path)
    if (isDeepStrictEqual(before, after)) continue
    const line = lineOf(path.split('.'))
    found.push({
      path,
      ...(line === undefined ? {} : { line }),
      message: `cannot change without a restart (${heldBy}): ${show(path, before)} is running, the file says ${show(path, after)}`,
    })
  }
  return found
}

function at(config: GatehouseConfig, path: string): unknown {
  let value: unknown = config
  for (const key of path.split('.')) value = (value as Record<string, unknown>)[key]
  return value
}

/** A store URL may carry a password: it is shown the way the startup line shows it. */
function show(path: string, value: unknown): string {
  if (path === 'session.store') return JSON.stringify((value as { display: string }).display)
  // Durations run in ms; the file may say `9s`.
  if (typeof value === 'number' && /Timeout$/.test(path)) return `${value} ms`
  return JSON.stringify(value)
}
