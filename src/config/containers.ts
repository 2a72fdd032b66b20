import type { TSchema } from '@sinclair/typebox'

type Path = readonly (string | number)[]

/** An option written as another kind of container than the schema's, or as none. */
export interface Misshapen {
  readonly path: Path
  readonly message: string
  /** Whether the option has a default, which it then takes; without one it reads as not written. */
  readonly defaulted: boolean
}

const LIST = 'must be a list ("- item" lines, or [a, b])'
const MAPPING = 'must be a mapping ("key: value" lines, or {key: value})'

/**
 * Finds each option written as a list where the schema has a mapping, or
 * as a mapping, a single value or nothing where it has a list (or the
 * reverse), and returns the tree without them. TypeBox would not refuse
 * them but remake them: `Value.Default` merges a value into an object
 * default with `Object.assign`, so `routes: {a: {…}}` becomes `[]` and
 * `authorizationParams: [a, b]` becomes `{"0": "a", "1": "b"}`, and
 * `Value.Convert` wraps a single value in a list. Left out, each takes
 * its default or is missing, which the caller does not report again.
 */
export function checkContainers(
  schema: TSchema,
  tree: Record<string, unknown>,
): { readonly tree: Record<string, unknown>; readonly problems: readonly Misshapen[] } {
  const problems: Misshapen[] = []
  const out = walk(schema, tree, [], problems) as Record<string, unknown>
  return { tree: out, problems }
}

/** `value` with every misshapen option below it left out; `undefined` when it is one itself. */
function walk(schema: TSchema, value: unknown, path: Path, problems: Misshapen[]): unknown {
  if (value === undefined) return value
  const kind = kindOf(value)
  if (kind === 'list' || kind === 'mapping') {
    // A union is written as one of its members: the one of the value's
    // kind, if any. One of no member's kind is left for the schema to name.
    const members = (schema.anyOf as TSchema[] | undefined) ?? [schema]
    const fits = members.filter((m) => m.type === (kind === 'list' ? 'array' : 'object'))
    if (fits.length > 0)
      return kind === 'list'
        ? inList(fits[0]!, value as unknown[], path, problems)
        : inMapping(fits, value as Record<string, unknown>, path, problems)
  }
  if (schema.anyOf !== undefined) return value
  const defaulted = schema.default !== undefined
  if (schema.type === 'array') {
    problems.push({
      path,
      defaulted,
      message: `${LIST}, ${kind === 'empty' ? 'not empty (write [] for none)' : `not a ${kind}`}`,
    })
    return undefined
  }
  if (schema.type === 'object') {
    problems.push({
      path,
      defaulted,
      message: `${MAPPING}, ${kind === 'empty' ? 'not empty' : `not a ${kind}`}`,
    })
    return undefined
  }
  return value
}

function inList(schema: TSchema, list: unknown[], path: Path, problems: Misshapen[]): unknown[] {
  return list.map((item, i) => walk(schema.items as TSchema, item, [...path, i], problems))
}

/** A mapping's options, each by the member that has it (a record's by its one value schema). */
function inMapping(
  members: readonly TSchema[],
  mapping: Record<string, unknown>,
  path: Path,
  problems: Misshapen[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(mapping)) {
    const option = optionSchema(members, key)
    const shaped = option === undefined ? item : walk(option, item, [...path, key], problems)
    if (shaped !== undefined) out[key] = shaped
  }
  return out
}

function optionSchema(members: readonly TSchema[], key: string): TSchema | undefined {
  for (const member of members) {
    const properties = member.properties as Record<string, TSchema> | undefined
    if (properties !== undefined && Object.hasOwn(properties, key)) return properties[key]
    const patterns = member.patternProperties as Record<string, TSchema> | undefined
    if (patterns !== undefined) return Object.values(patterns)[0]
  }
  return undefined
}

type Kind = 'list' | 'mapping' | 'empty' | 'single value'

function kindOf(value: unknown): Kind {
  if (value === null) return 'empty'
  if (Array.isArray(value)) return 'list'
  return typeof value === 'object' ? 'mapping' : 'single value'
}
