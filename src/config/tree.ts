import { Value } from '@sinclair/typebox/value'
import { checkContainers } from './containers.js'
import { keepNumberText, lineLocator, numberTextProblems, parseYaml } from './document.js'
import { interpolateTree } from './env.js'
import { ConfigError, type ConfigProblem } from './errors.js'
import { formatPath } from './option-path.js'
import { ConfigSchema } from './schema.js'
import { truncatedNumbers } from './whole-numbers.js'
import { documentValues } from './yaml-values.js'

/** Config text as the schema sees it, before anything checks it. */
export interface ConfigTree {
  /** The line of an option path in the text (document.ts). */
  readonly lineOf: (path: readonly (string | number)[]) => number | undefined
  /** The options, variables filled in, defaults added and converted as the schema says; unchecked. */
  readonly tree: Record<string, unknown>
  /**
   * Each option whose value is not what the file means, as a problem at
   * that option: its `${VAR}` is not set, or YAML read a number where the
   * option takes text (document.ts `numberTextProblems`).
   */
  readonly unset: readonly ConfigProblem[]
  /** Each option written as another kind of container (containers.ts), left out of `tree`. */
  readonly misshapen: readonly ConfigProblem[]
  /** True when one of them has no default: `tree` then reads as if it were not written at all. */
  readonly leftOut: boolean
  /** What secrets' variables put in, and where: a problem there must not quote it (`hideSecrets`). */
  readonly secrets: readonly PlacedSecret[]
}

/** A value a secret's variable put in at an option (env.ts `interpolateTree`). */
export interface PlacedSecret {
  readonly path: string
  readonly name: string
  readonly value: string
  /** The option holds a secret: the value is one wherever else it is written. */
  readonly inOption: boolean
}

/**
 * Parses config text (YAML, or JSON, which is YAML) into the tree the schema
 * checks. Throws `ConfigError` when the text is not YAML, holds what a
 * config may not (yaml-values.ts), or is not a mapping. `running`: `env`
 * is a running gateway's, read by a reload (env.ts `interpolateTree`).
 */
export function readConfigTree(
  text: string,
  source: string,
  env: NodeJS.ProcessEnv,
  running = false,
): ConfigTree {
  const { doc, lineCounter, problems } = parseYaml(text)
  if (doc === undefined || problems.length > 0) throw new ConfigError(source, problems)
  const lineOf = lineLocator(doc, lineCounter)
  keepNumberText(doc)
  const values = documentValues(doc, lineCounter)
  if (values.problems.length > 0)
    throw new ConfigError(
      source,
      [...values.problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0)),
    )

  const unset: ConfigProblem[] = []
  const secrets: PlacedSecret[] = []
  const raw = interpolateTree(
    values.value,
    [],
    env,
    (path, message) => {
      unset.push({ path: formatPath(path), line: lineOf(path), message })
    },
    (path, name, value, inOption) => {
      secrets.push({ path: formatPath(path), name, value, inOption })
    },
    running,
  )
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(
      source,
      hideSecrets(
        [...unset, { path: '', line: 1, message: 'the file must be a mapping of options' }],
        secrets,
      ),
    )
  }
  const shaped = checkContainers(ConfigSchema, raw as Record<string, unknown>)
  const misshapen = shaped.problems.map((p) => ({
    path: formatPath(p.path),
    line: lineOf(p.path),
    message: p.message,
  }))
  // Convert: `port: ${PORT}` arrives as text and must count as the number
  // it would have been had it been typed in, wherever the schema says so.
  // Default fills the tree it is given: what was written is kept apart.
  const written = structuredClone(shaped.tree)
  const tree = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, shaped.tree)) as Record<
    string,
    unknown
  >
  unset.push(...numberTextProblems(doc, lineCounter, tree))
  unset.push(...truncatedNumbers(written, tree, lineOf))
  return {
    lineOf,
    tree,
    unset,
    misshapen,
    leftOut: shaped.problems.some((p) => !p.defaulted),
    secrets,
  }
}

/**
 * `problems` with each value a secret's variable put in cut out of the
 * messages at its option and those above it, which may quote it (`got
 * "…"`): a secret's variable in an option that quotes its value, a value
 * pasted into the wrong variable, must not reach the terminal or a CI log.
 * What a secret option holds is cut out of every message: pasted into a
 * second variable, or one variable not named like a secret feeding the
 * secret and an option that quotes its value, it is the secret all the
 * same. Its JSON form is cut too, as a quote escapes a newline or a `"` in it.
 */
export function hideSecrets<P extends ConfigProblem>(
  problems: readonly P[],
  secrets: readonly PlacedSecret[],
): P[] {
  return problems.map((problem) => {
    const message = withoutSecrets(
      problem.message,
      secrets.filter(({ path, inOption }) => inOption || within(path, problem.path)),
    )
    return message === problem.message ? problem : { ...problem, message }
  })
}

/** `text` with each secret's value, and its JSON form, cut out and named (`withoutForms`). */
export function withoutSecrets(
  text: string,
  secrets: readonly { readonly name: string; readonly value: string }[],
): string {
  const forms = new Map<string, string>()
  for (const { name, value } of secrets) {
    // An empty value is in every text, and at every place of it.
    if (value === '') continue
    for (const form of [value, JSON.stringify(value).slice(1, -1)])
      if (!forms.has(form)) forms.set(form, name)
  }
  return withoutForms(text, forms)
}

/**
 * `message` with every character of any occurrence of `forms` (text → the
 * variable's name) cut out, each run of them replaced once by the names.
 * All at once, over the message as it came: one after another, a secret
 * that is part of another cut that one short and left the rest printed,
 * and a later pass read the words an earlier put in, cutting a short
 * secret out of them again (each pass multiplying the message).
 */
function withoutForms(message: string, forms: ReadonlyMap<string, string>): string {
  if (forms.size === 0) return message
  const covered: (string | undefined)[] = new Array(message.length)
  for (const [form, name] of forms) {
    // Each character is marked once per form, however its occurrences overlap.
    let markedTo = 0
    for (let at = message.indexOf(form); at !== -1; at = message.indexOf(form, at + 1)) {
      for (let i = Math.max(at, markedTo); i < at + form.length; i++) covered[i] ??= name
      markedTo = at + form.length
    }
  }
  let out = ''
  for (let i = 0; i < message.length; ) {
    if (covered[i] === undefined) {
      out += message[i++]
      continue
    }
    const names = new Set<string>()
    while (i < message.length && covered[i] !== undefined) names.add(covered[i++]!)
    out += `[redacted: the value of ${[...names].join(', ')}]`
  }
  return out
}

/** Whether the option at `path` is `at` or inside it. */
function within(path: string, at: string): boolean {
  return at === '' || path === at || path.startsWith(`${at}.`) || path.startsWith(`${at}[`)
}
