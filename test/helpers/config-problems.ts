import { ConfigError } from '../../src/config/errors.js'
import { parseConfig } from '../../src/config/load.js'

/** The problems of a bad document, as `line path: message` strings; throws when the document loads. */
export function configProblems(text: string, env: NodeJS.ProcessEnv): string[] {
  try {
    parseConfig(text, 'routes.yaml', env)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return err.problems.map((p) => `${p.line} ${p.path}: ${p.message}`)
  }
  throw new Error('expected a ConfigError')
}
