import type { TSchema } from '@sinclair/typebox'
import { Value, type ValueError } from '@sinclair/typebox/value'
import type { ConfigProblem } from './errors.js'
import { FRONTEND_HOST_PATTERN, frontendHostProblem } from './frontend-host.js'
import { unescapePointer } from './option-path.js'
import { closest } from './suggest.js'

/*
 * What YAML's parser and the schema say of a config file, said the way a
 * person editing the YAML needs it: one line per problem, at its option.
 */

interface YamlError {
  readonly code?: string
  readonly message: string
  readonly linePos?: readonly [{ readonly line: number }, ...unknown[]] | undefined
}

/**
 * YAML's syntax errors, one line each. An unquoted `${VAR}` inside `[...]` or
 * `{...}` is the usual cause in a config file: YAML reads its `{` as a nested
 * flow mapping and reports a cascade of errors, often on the lines below too,
 * that never names it. When it is there, it alone is reported.
 */
export function syntaxProblems(errors: readonly YamlError[], text: string): ConfigProblem[] {
  const lines = text.split(/\r?\n/)
  // Once a line: a long line can hold many errors.
  const variables = new Map<number, string | undefined>()
  const variableOn = (line: number) => {
    if (!variables.has(line)) variables.set(line, unquotedFlowVariable(lines[line - 1] ?? ''))
    return variables.get(line)
  }
  const hinted = new Set<number>()
  const problems: ConfigProblem[] = []
  for (const e of errors) {
    const line = e.linePos?.[0].line
    const message = messageOf(e)
    const variable = line === undefined ? undefined : variableOn(line)
    if (variable === undefined) {
      problems.push({ path: '', line, message })
    } else if (!hinted.has(line!)) {
      hinted.add(line!)
      problems.push({
        path: '',
        line,
        message: `${message}; inside [ ] or { } quote the variable: "${variable}"`,
      })
    }
  }
  return hinted.size > 0 ? problems.filter((p) => hinted.has(p.line!)) : problems
}

/** The error's first line, without its position; in our words where the library's speak of its API. */
function messageOf(error: YamlError): string {
  // The library suggests calling its YAML.parseAllDocuments().
  if (error.code === 'MULTIPLE_DOCS')
    return 'a second YAML document starts here (after a --- or ... line); a config file is one document'
  return `YAML syntax error: ${error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`
}

/**
 * The first `${…}` after a `[` or `{` on the line, outside quotes and before
 * a comment. One pass: a regex that tried each bracket in turn was quadratic
 * in the line, and a minified JSON config with a syntax error (one line of
 * 1 MB) held the event loop for seconds.
 */
function unquotedFlowVariable(line: string): string | undefined {
  let inFlow = false
  for (let i = 0; i < line.length; i++) {
    const c = line[i]
    if (c === '#') return undefined
    if (c === '"' || c === "'") i = closingQuote(line, i)
    else if (c === '[' || c === '{') inFlow = true
    else if (inFlow && c === '$' && line[i + 1] === '{') {
      const end = line.indexOf('}', i + 2)
      return end === -1 ? undefined : line.slice(i, end + 1)
    }
  }
  return undefined
}

/** Where the quoted scalar opened at `open` ends; the end of the line if it does not. */
function closingQuote(line: string, open: number): number {
  const quote = line[open]
  for (let i = open + 1; i < line.length; i++) {
    // YAML's escapes: `\"` in double quotes, `''` in single ones.
    if (quote === '"' && line[i] === '\\') i++
    else if (line[i] === quote) {
      if (quote === "'" && line[i + 1] === "'") i++
      else return i
    }
  }
  return line.length
}

interface SchemaError {
  readonly message: string
  readonly schema: {
    anyOf?: { const?: unknown; type?: string; pattern?: string; properties?: Record<string, unknown> }[]
    description?: string
    pattern?: string
    properties?: Record<string, unknown>
  }
  readonly path: string
  readonly value: unknown
  readonly type: number
}

/**
 * A mapping that fails a `true`-or-mapping option (`websocket: true` or
 * `websocket: { maxMessage, … }`) is wrong in one of its keys: report those, where
 * TypeBox reports only that no member of the union matched.
 */
export function intoMapping(error: ValueError): ValueError[] {
  const members = error.schema.anyOf as TSchema[] | undefined
  const mapping = members?.some((member) => member.type === 'boolean')
    ? members.find((member) => member.type === 'object')
    : undefined
  const { value } = error
  if (!mapping || typeof value !== 'object' || value === null || Array.isArray(value)) return [error]
  // The union's defaults were not filled in, since no member matched.
  const filled = Value.Default(mapping, structuredClone(value))
  return [...Value.Errors(mapping, filled)].map((inner) => ({ ...inner, path: `${error.path}${inner.path}` }))
}

/** TypeBox's messages, said the way a person editing YAML needs them. */
export function describe(error: SchemaError): string {
  const options = error.schema.anyOf
  if (error.message === 'Unexpected property') {
    const key = String(unescapePointer(error.path.split('/').at(-1) ?? ''))
    const meant = closest(key, Object.keys(error.schema.properties ?? {}))
    return meant === undefined ? 'unknown option' : `unknown option (did you mean ${meant}?)`
  }
  if (error.message.startsWith('Expected required property')) return 'is required'
  if (error.schema.pattern === FRONTEND_HOST_PATTERN) return frontendHostProblem(error.value)
  if (options?.some((o) => o.type === 'boolean') && options.some((o) => o.type === 'object')) {
    const keys = Object.keys(options.find((o) => o.type === 'object')?.properties ?? {})
    return `must be true, false or a mapping of ${keys.join(', ')} (got ${JSON.stringify(error.value)})`
  }
  if (options?.every((o) => o.const !== undefined)) {
    return `must be one of ${options.map((o) => o.const).join(', ')} (got ${JSON.stringify(error.value)})`
  }
  if (options?.some((o) => o.pattern !== undefined)) {
    return error.schema.description?.includes('A duration')
      ? `must be a duration like 500ms, 30s, 5m, 12h, 1d or a number of seconds (got ${JSON.stringify(error.value)})`
      : `must be a size like 1mb, 512kb or a number of bytes (got ${JSON.stringify(error.value)})`
  }
  return error.message.charAt(0).toLowerCase() + error.message.slice(1)
}

/** One problem per option path: the first, most specific, that TypeBox gave. */
export function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>()
  // A bad union member also fails the union itself: keep one line per path,
  // preferring the most specific message (the first TypeBox yields).
  return problems.filter((p) => {
    if (seen.has(p.path)) return false
    seen.add(p.path)
    return true
  })
}
