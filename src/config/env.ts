import { formatPath, type Path } from './option-path.js'

/**
 * Replaces `${VAR}` and `${VAR:-default}` from the environment. Returns the
 * names that were missing (no value and no default) instead of guessing.
 */
export function interpolate(
  text: string,
  env: NodeJS.ProcessEnv,
): { readonly value: string; readonly missing: readonly string[] } {
  const missing: string[] = []
  const value = text.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
    (_match, name: string, fallback?: string) => {
      const found = env[name]
      if (found !== undefined && found !== '') return found
      if (fallback !== undefined) return fallback
      missing.push(name)
      return ''
    },
  )
  return { value, missing }
}

/**
 * `interpolate` over every string of the parsed tree, reporting each
 * variable that is not set at the option it was meant for.
 */
export function interpolateTree(
  value: unknown,
  path: Path,
  env: NodeJS.ProcessEnv,
  report: (path: Path, message: string) => void,
): unknown {
  // A self-referencing alias (`&a [*a]`) is a cycle; no real config nests this deep.
  if (path.length > 32) {
    report(path.slice(0, 1), 'nests too deeply or refers to itself')
    return null
  }
  if (typeof value === 'string') {
    const { value: out, missing } = interpolate(value, env)
    for (const name of missing) {
      // A default written in the file would put the secret in the file.
      const hint = isSecret(path, name)
        ? 'a secret: set it in the environment'
        : `or use \${${name}:-default} for a default`
      report(path, `environment variable ${name} is not set (${hint})`)
    }
    return out
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateTree(v, [...path, i], env, report))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = interpolateTree(v, [...path, k], env, report)
    return out
  }
  return value
}

const SECRET_OPTION = /^((oidc|identityProviders\[\d+\])\.clientSecret|session\.secrets?(\[\d+\])?)$/
const SECRET_NAME = /SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|CREDENTIAL|(^|_)KEY($|_)/i

function isSecret(path: Path, name: string): boolean {
  return SECRET_OPTION.test(formatPath(path)) || SECRET_NAME.test(name)
}
