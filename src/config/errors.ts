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
