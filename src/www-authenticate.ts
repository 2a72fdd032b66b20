/** One challenge of a `WWW-Authenticate` field: its scheme, lower-cased, and its parameters by lower-cased name. */
export interface Challenge {
  readonly scheme: string
  readonly params: ReadonlyMap<string, string>
}

// RFC 9110 §5.6.2 token, §11.2 token68, §5.6.4 quoted-string.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*(?=[\t ]*(?:,|$))/
const QUOTED = /^"((?:[^"\\]|\\[\s\S])*)"/
const PARAM_NAME = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[\t ]*=[\t ]*/

/**
 * The challenges of one `WWW-Authenticate` field value (RFC 9110 §11.6.1:
 * `#challenge`, each `auth-scheme [ 1*SP ( token68 / #auth-param ) ]`), or
 * undefined for a value that does not parse. A comma separates challenges
 * and parameters alike: a name followed by `=` is a parameter of the
 * challenge before it, any other token starts a challenge. So
 * `Bearer realm="dpop", error="use_dpop_nonce"` is one Bearer challenge,
 * whose realm only names DPoP, and `Bearer realm="api", DPoP
 * error="use_dpop_nonce"` is two, the second a DPoP one. oauth4webapi
 * parses the IdP's challenges so, but does not export its parser.
 */
export function parseChallenges(value: string): Challenge[] | undefined {
  const challenges: Challenge[] = []
  let params: Map<string, string> | undefined
  let rest = value
  for (;;) {
    rest = rest.replace(/^[\t ,]+/, '')
    if (rest === '') break
    const param = params === undefined ? null : PARAM_NAME.exec(rest)
    if (param && params) {
      rest = rest.slice(param[0].length)
      const quoted = QUOTED.exec(rest)
      const token = quoted ? null : TOKEN.exec(rest)
      if (!quoted && !token) return undefined
      const name = param[1]!.toLowerCase()
      // RFC 9110 §11.2: each parameter name occurs once per challenge.
      if (params.has(name)) return undefined
      params.set(name, quoted ? quoted[1]!.replace(/\\([\s\S])/g, '$1') : token![0])
      rest = rest.slice((quoted ?? token)![0].length)
      if (!/^[\t ]*(?:,|$)/.test(rest)) return undefined
      continue
    }
    const scheme = TOKEN.exec(rest)
    if (!scheme) return undefined
    rest = rest.slice(scheme[0].length)
    params = new Map()
    challenges.push({ scheme: scheme[0].toLowerCase(), params })
    if (/^[\t ]*(?:,|$)/.test(rest)) continue
    if (!/^ +/.test(rest)) return undefined
    rest = rest.replace(/^ +/, '')
    // A token68 is the challenge's whole rest (`abc==` ends in `=` too); `name=value` is a parameter.
    const name = PARAM_NAME.exec(rest)
    if (name && !/^(?:=|,|$)/.test(rest.slice(name[0].length))) continue
    const token68 = TOKEN68.exec(rest)
    if (!token68) return undefined
    rest = rest.slice(token68[0].length)
    params = undefined
  }
  return challenges.length > 0 ? challenges : undefined
}

/**
 * Whether a `WWW-Authenticate` header, as node:http gives it (one string,
 * or one per field line), carries a challenge of `scheme` (lower case)
 * whose `error` parameter is one of `errors`. A field line that does not
 * parse counts for nothing; the others still do.
 */
export function hasChallenge(
  header: string | readonly string[] | null | undefined,
  scheme: string | readonly string[],
  errors: readonly string[],
): boolean {
  if (header === undefined || header === null) return false
  const schemes = typeof scheme === 'string' ? [scheme] : scheme
  const values = typeof header === 'string' ? [header] : header
  return values.some(
    (value) =>
      parseChallenges(value)?.some((challenge) => {
        const error = challenge.params.get('error')
        return schemes.includes(challenge.scheme) && error !== undefined && errors.includes(error)
      }) ?? false,
  )
}
