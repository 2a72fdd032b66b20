import { formatPath, type Path } from './option-path.js'

/**
 * What a string may hold that looks like a variable: a reference Gatehouse
 * replaces (`${VAR}`, `${VAR:-default}`, whose default holds no `${`), any
 * other `${…}` (a shell's `${VAR:?message}` or `${VAR-default}`, a
 * templating tool's `${env:VAR}`, a nested default), and a bare `$VAR`.
 * The last two are never replaced: kept as text, an unset secret would be
 * whatever the file says.
 */
const REFERENCE =
  /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-((?:[^}$]|\$(?!\{))*))?\}|\$\{([A-Za-z0-9_]*[^A-Za-z0-9_}\s$]{0,2}(?:\$\{)?)[^}]*\}?|\$([A-Za-z_][A-Za-z0-9_]*)/g

/** What `interpolate` made of a string, and what it could not replace. */
export interface Interpolated {
  readonly value: string
  /** Names with no value and no default. */
  readonly missing: readonly string[]
  /** Each `${…}` not of a replaced form, shown by its start only (`${VAR:?…}`): what follows may be a secret. */
  readonly unsupported: readonly string[]
  /**
   * Each `${VAR}` or `${VAR:-…}` written after a `$`, as docker compose's
   * escape `$${VAR}`, shown by name only: never replaced (`interpolateTree`).
   */
  readonly escaped: readonly string[]
  /** Each bare `$VAR`'s name: text, unless the option holds a secret (`interpolateTree`). */
  readonly bare: readonly string[]
  /** Each variable whose value was put in, by name. */
  readonly replaced: ReadonlyMap<string, string>
}

/**
 * Replaces `${VAR}` and `${VAR:-default}` from the environment. Returns the
 * names that were missing (no value and no default) instead of guessing,
 * and every other form it left as it was. What a variable brings in is
 * not read again.
 */
export function interpolate(text: string, env: NodeJS.ProcessEnv): Interpolated {
  const missing: string[] = []
  const unsupported: string[] = []
  const bare: string[] = []
  const escaped: string[] = []
  const replaced = new Map<string, string>()
  const value = text.replace(
    REFERENCE,
    (match, name?: string, fallback?: string, start?: string, bareName?: string, at?: number) => {
      if (bareName !== undefined) {
        bare.push(bareName)
        return match
      }
      if (name === undefined) {
        unsupported.push(`\${${start ?? ''}…}`)
        return match
      }
      // Compose's `$$` escape: whichever the writer meant, a literal
      // `${VAR}` or `$` and the value, the other is silently wrong.
      if (at !== undefined && text[at - 1] === '$') {
        escaped.push(`$\${${name}${fallback === undefined ? '' : ':-…'}}`)
        return match
      }
      const found = env[name]
      if (found !== undefined && found !== '') {
        replaced.set(name, found)
        return found
      }
      if (fallback !== undefined) return fallback
      missing.push(name)
      return ''
    },
  )
  return { value, missing, unsupported, escaped, bare, replaced }
}

/**
 * `interpolate` over every string of the parsed tree, reporting each
 * variable that is not set at the option it was meant for, and each value
 * a secret's variable (by its name, or the option's) put in (`secret`;
 * `inOption` when the option holds a secret, whatever the variable is called).
 * `running`: `env` is that of a gateway already running, which a reload
 * reads, so an unset variable is told to need a restart.
 */
export function interpolateTree(
  value: unknown,
  path: Path,
  env: NodeJS.ProcessEnv,
  report: (path: Path, message: string) => void,
  secret: (path: Path, name: string, value: string, inOption: boolean) => void = () => {},
  running = false,
): unknown {
  // A self-referencing alias (`&a [*a]`) is a cycle; no real config nests this deep.
  if (path.length > 32) {
    report(path.slice(0, 1), 'nests too deeply or refers to itself')
    return null
  }
  if (typeof value === 'string') {
    const { value: out, missing, unsupported, escaped, bare, replaced } = interpolate(value, env)
    const inOption = replaced.size > 0 && SECRET_OPTION.test(formatPath(path))
    for (const [name, found] of replaced)
      if (inOption || SECRET_NAME.test(name)) secret(path, name, found, inOption)
    for (const form of unsupported) {
      report(
        path,
        `${form} is not a reference Gatehouse replaces (only \${VAR} and \${VAR:-default} are), and would be kept as text`,
      )
    }
    for (const form of escaped) report(path, `${form} ${NO_ESCAPE}`)
    // A `$` is text elsewhere (an id may hold one); where a secret goes, a
    // `$VAR` meant as a reference would be kept as the secret.
    for (const name of bare.filter((n) => isSecret(path, n))) {
      report(path, `$${name} is not replaced (only \${${name}} is), and would be kept as the secret`)
    }
    for (const name of missing) report(path, unsetVariable(name, isSecret(path, name), running))
    return out
  }
  if (Array.isArray(value))
    return value.map((v, i) => interpolateTree(v, [...path, i], env, report, secret, running))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value))
      out[k] = interpolateTree(v, [...path, k], env, report, secret, running)
    return out
  }
  return value
}

/**
 * Why `name` is missing, and what to do. A process's environment is fixed
 * when it starts: a variable added to a pod's spec, a systemd unit or a
 * shell after that reaches a new process only, so for a running gateway's
 * reload the fix is a restart, not an edit of the environment alone.
 */
function unsetVariable(name: string, secret: boolean, running: boolean): string {
  // A default written in the file would put the secret in the file.
  const withDefault = `or use \${${name}:-default} for a default`
  if (!running)
    return `environment variable ${name} is not set (${secret ? 'a secret: set it in the environment' : withDefault})`
  const fix = secret
    ? 'a secret: set it and restart the gateway'
    : `set it and restart the gateway, ${withDefault}`
  return `environment variable ${name} is not set in the environment this gateway started with, which a reload reads and never sees change (${fix})`
}

const NO_ESCAPE =
  'is not an escape in Gatehouse, as it is in docker compose: it would be read as $ followed by the reference. A literal ${ cannot be written in the file: put the text in an environment variable and write ${THAT_VARIABLE} here (what a variable brings in is not read again)'

/** The client's secret, the session's, and private keys written in (a client key, a TLS key). */
const SECRET_OPTION =
  /^((oidc|identityProviders\[\d+\])\.clientSecret|session\.secrets?(\[\d+\])?)$|(^|\.)(clientKey\.(pem|jwk)|tls\.key\.pem)(\.|\[|$)/
const SECRET_NAME = /SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|CREDENTIAL|(^|_)KEY($|_)/i

/**
 * The variables of `env` named like a secret, with their values: what a
 * config read from `env` may have put in anywhere, under that name.
 */
export function secretVariables(env: NodeJS.ProcessEnv): { name: string; value: string }[] {
  return Object.entries(env).flatMap(([name, value]) =>
    value !== undefined && value !== '' && SECRET_NAME.test(name) ? [{ name, value }] : [],
  )
}

function isSecret(path: Path, name: string): boolean {
  return SECRET_OPTION.test(formatPath(path)) || SECRET_NAME.test(name)
}
