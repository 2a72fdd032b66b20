import { ConfigSchema } from './schema.js'

type Node = { [key: string]: unknown }

/**
 * A key with a default is optional to whoever writes the file; the loader
 * fills it in before validating, so only the editor's copy needs this.
 */
function relaxDefaults(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(relaxDefaults)
  if (node === null || typeof node !== 'object') return node
  const out: Node = {}
  for (const [k, v] of Object.entries(node as Node)) out[k] = relaxDefaults(v)
  const properties = out.properties as Record<string, Node> | undefined
  if (properties && Array.isArray(out.required)) {
    out.required = (out.required as string[]).filter((k) => !('default' in (properties[k] ?? {})))
  }
  return out
}

/**
 * The config schema as a JSON Schema document for editors
 * (`# yaml-language-server: $schema=./schema/routes.schema.json`). It is
 * the same schema `gatehouse check` validates with.
 */
export function renderSchema(): string {
  const schema = relaxDefaults(JSON.parse(JSON.stringify(ConfigSchema))) as Node
  return `${JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...schema }, null, 2)}\n`
}
