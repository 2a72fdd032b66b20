import { isDeepStrictEqual } from 'node:util'
import { parseDuration, parseSize } from './duration.js'
import { secretVariables } from './env.js'
import type { ConfigProblem } from './errors.js'
import { parseStore } from './store-url.js'
import { readConfigTree, withoutSecrets } from './tree.js'
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
  ['session.storeTimeout', 'the session store is connected once, at start'],
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

/** A value a restart message must name, not quote. */
interface NamedSecret {
  readonly name: string
  readonly value: string
}

/**
 * The settings that differ between the running config and a new one but
 * cannot change while the process runs, in `RESTART_SETTINGS` order;
 * empty when the new config may be applied live. No text value is quoted
 * with one of `secrets` in it.
 */
export function restartNeeded(
  running: GatehouseConfig,
  next: GatehouseConfig,
  lineOf: (path: readonly string[]) => number | undefined = () => undefined,
  secrets: readonly NamedSecret[] = [],
): RestartNeeded[] {
  return compare(running, new Map(RESTART_SETTINGS.map(([path]) => [path, at(next, path)])), lineOf, secrets)
}

/**
 * `restartNeeded` for config text that passed its check, as a reload logs
 * it: each at its line in `text`, and a value a secret's variable put in
 * (tree.ts `hideSecrets`) named, not quoted. The text is read again only
 * when a setting differs.
 */
export function restartNeededOf(
  running: GatehouseConfig,
  next: GatehouseConfig,
  text: string,
  env: NodeJS.ProcessEnv,
): RestartNeeded[] {
  if (restartNeeded(running, next).length === 0) return []
  const read = readConfigTree(text, '', env)
  return restartNeeded(running, next, read.lineOf, heldSecrets(running, env, read.secrets))
}

/**
 * `restartNeeded` for config text that failed its check, with `problems`:
 * each restart setting the text can still be read for (no problem names
 * it, or an option around or within it) is compared, so that one refusal
 * names everything to fix, a secret's variable's value named, not quoted.
 * Empty when the text is not a YAML mapping.
 */
export function restartNeededIn(
  running: GatehouseConfig,
  text: string,
  env: NodeJS.ProcessEnv,
  problems: readonly ConfigProblem[],
): RestartNeeded[] {
  let read: ReturnType<typeof readConfigTree>
  try {
    read = readConfigTree(text, '', env)
  } catch {
    return []
  }
  const blamed = [...problems, ...read.unset].map((p) => p.path).filter((p) => p !== '')
  const readable = new Map<string, unknown>()
  for (const [path] of RESTART_SETTINGS) {
    if (blamed.some((b) => overlaps(b, path))) continue
    const value = resolved(path, at(read.tree, path))
    if (value !== UNREADABLE) readable.set(path, value)
  }
  return compare(running, readable, read.lineOf, heldSecrets(running, env, read.secrets))
}

/**
 * What neither value of a restart message may quote: what the new file's
 * secrets' variables put in (tree.ts), and, as the running value was read
 * by an earlier file that may have put a secret where this one puts none,
 * what every variable named like a secret holds and what the running
 * secret options hold.
 */
function heldSecrets(
  running: GatehouseConfig,
  env: NodeJS.ProcessEnv,
  placed: readonly NamedSecret[],
): NamedSecret[] {
  return [
    ...placed,
    ...secretVariables(env),
    ...running.session.secrets.map((value, i) => ({ name: `session.secrets[${i}]`, value })),
    ...running.identityProviders.flatMap(({ name, clientSecret }) =>
      clientSecret ? [{ name: `the clientSecret of provider ${name}`, value: clientSecret }] : [],
    ),
  ]
}

/** One of the paths is the other, or an option within it. */
function overlaps(a: string, b: string): boolean {
  const within = (inner: string, outer: string) =>
    inner === outer || inner.startsWith(`${outer}.`) || inner.startsWith(`${outer}[`)
  return within(a, b) || within(b, a)
}

const UNREADABLE = Symbol('unreadable')

/**
 * A setting as the file writes it (defaults filled in), as a loaded config
 * holds it (load.ts `resolve`); a test holds the two to agreement.
 */
function resolved(path: string, value: unknown): unknown {
  if (value === undefined) return UNREADABLE
  if (path === 'session.store') {
    const store = typeof value === 'string' ? parseStore(value) : undefined
    return typeof store === 'object' ? store : UNREADABLE
  }
  if (path === 'server.maxHeaderSize') return parseSize(value as number | string)
  if (/Timeout$/.test(path)) return parseDuration(value as number | string)
  return value
}

/**
 * The settings of `next` given (by path) that differ from `running`'s.
 * Only a text value (a host, the store, the key prefix) is cut of
 * `secrets`, each in one pass (tree.ts `withoutSecrets`): a number or a
 * flag is shown as it is, not cut where a short secret's digits occur in
 * it, and nothing of the message's own words is.
 */
function compare(
  running: GatehouseConfig,
  next: ReadonlyMap<string, unknown>,
  lineOf: (path: readonly string[]) => number | undefined,
  secrets: readonly NamedSecret[],
): RestartNeeded[] {
  const quoted = (path: string, value: unknown) =>
    typeof value === 'string' || path === 'session.store'
      ? withoutSecrets(show(path, value), secrets)
      : show(path, value)
  const found: RestartNeeded[] = []
  for (const [path, heldBy] of RESTART_SETTINGS) {
    if (!next.has(path)) continue
    const before = at(running, path)
    const after = next.get(path)
    if (isDeepStrictEqual(before, after)) continue
    const line = lineOf(path.split('.'))
    found.push({
      path,
      ...(line === undefined ? {} : { line }),
      message: `cannot change without a restart (${heldBy}): ${quoted(path, before)} is running, the file says ${quoted(path, after)}`,
    })
  }
  return found
}

/** The value at `path`; `undefined` where an option on the way is not a mapping. */
function at(config: object, path: string): unknown {
  let value: unknown = config
  for (const key of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
    value = (value as Record<string, unknown>)[key]
  }
  return value
}

/** A store URL may carry a password: it is shown the way the startup line shows it. */
function show(path: string, value: unknown): string {
  if (path === 'session.store') return JSON.stringify((value as { display: string }).display)
  // Durations run in ms; the file may say `9s`.
  if (typeof value === 'number' && /Timeout$/.test(path)) return `${value} ms`
  return JSON.stringify(value)
}
