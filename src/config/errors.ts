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

export function formatProblem(source: string, problem: ConfigProblem): string {
  const where = problem.line === undefined ? source : `${source}:${problem.line}`
  return problem.path ? `${where} ${problem.path}: ${problem.message}` : `${where} ${problem.message}`
}
