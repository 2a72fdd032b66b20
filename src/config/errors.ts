/** One thing wrong with a config file, located by option path and YAML line. */
export interface ConfigProblem {
  /** Option path, e.g. `routes[0].token`; empty for the whole document. */
  readonly path: string
  /** 1-based line in the file, when it can be located. */
  readonly line?: number | undefined
  readonly message: string
}

/** Every problem found in a config file, reported together. */
export class ConfigError extends Error {
  readonly code = 'GATEHOUSE_ERR_CONFIG'
  readonly source: string
  readonly problems: readonly ConfigProblem[]

  constructor(source: string, problems: readonly ConfigProblem[]) {
    super(
      `${source}: ${problems.length} configuration problem${problems.length === 1 ? '' : 's'}\n${problems
        .map((p) => `  ${formatProblem(source, p)}`)
        .join('\n')}`,
    )
    this.name = 'ConfigError'
    this.source = source
    this.problems = problems
  }
}

/**
 * The most problems a refused reload logs, and `gatehouse start` prints,
 * one line each: a human-sized file has a handful, and one of 30,000
 * unknown keys wrote 8 MiB of log per reload (per edit), or per restart of
 * a start that crash-loops. The rest are counted on one more line (`unlistedProblems`);
 * `gatehouse check` lists them all.
 */
export const MAX_PROBLEM_LINES = 50

/**
 * The line that stands for the problems past the first `MAX_PROBLEM_LINES`
 * of `count` in `source`, or `undefined` when there are none past them.
 */
export function unlistedProblems(source: string, count: number): string | undefined {
  const more = count - MAX_PROBLEM_LINES
  if (more <= 0) return undefined
  return `${source}: ${more} more problem${more === 1 ? '' : 's'} not listed here; \`gatehouse check --config ${source}\` lists them all`
}

/** Longest option path a problem line shows; a real one is under 100 characters. */
const MAX_PATH = 200
/** Longest message a problem line shows; a real one is under 700 characters. */
const MAX_MESSAGE = 1000

/**
 * One problem as one line for a terminal or a log: `file:line path: message`.
 * The path and the message are `escapedLine`: both may hold what the file or a
 * variable holds (a key, a quoted value).
 */
export function formatProblem(source: string, problem: ConfigProblem): string {
  const where = problem.line === undefined ? source : `${source}:${problem.line}`
  const message = escapedLine(problem.message, MAX_MESSAGE)
  return problem.path ? `${where} ${escapedLine(problem.path, MAX_PATH)}: ${message}` : `${where} ${message}`
}

/**
 * `text` cut at `max`, with controls (ESC, CR, C1 CSI), format characters
 * (the bidi overrides and isolates of Trojan Source, CVE-2021-42574; zero
 * widths) and line separators written as \u escapes: a terminal would act
 * on them (recolour, retitle, overwrite the line) or show the line
 * otherwise than it is, and the author of the file needs to see them to
 * remove them. Cut first, so a long value stays short once escaped.
 */
export function escapedLine(text: string, max: number): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text
  return cut.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, (c) => {
    const hex = c.codePointAt(0)!.toString(16)
    return hex.length > 4 ? `\\u{${hex}}` : `\\u${hex.padStart(4, '0')}`
  })
}
