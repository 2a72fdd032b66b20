import { RESTART_SETTINGS } from './reload-policy.js'
import { ConfigSchema } from './schema.js'

type Node = {
  type?: string
  description?: string
  default?: unknown
  properties?: Record<string, Node>
  items?: Node
  anyOf?: Node[]
  const?: unknown
  required?: string[]
  pattern?: string
}

/** The mapping of a `true`-or-mapping option (routes[].websocket), whose keys get rows of their own. */
function switchMapping(node: Node): Node | undefined {
  return node.anyOf?.some((n) => n.type === 'boolean')
    ? node.anyOf.find((n) => n.type === 'object')
    : undefined
}

const RESTART_NOTE = ' Needs a restart: a reload that changes it is refused.'

/**
 * The restart note of the option at `path`: one a reload refuses
 * (reload-policy.ts), or one within it, says so, so the table cannot
 * promise a reload that the gateway refuses.
 */
function restartNote(path: string): string {
  return RESTART_SETTINGS.some(([held]) => path === held || path.startsWith(`${held}.`)) ? RESTART_NOTE : ''
}

function typeOf(node: Node): string {
  if (switchMapping(node)) return 'boolean \\| section'
  if (node.anyOf?.every((n) => n.const !== undefined))
    return node.anyOf.map((n) => `\`${n.const}\``).join(' \\| ')
  if (node.anyOf?.some((n) => n.pattern)) return node.description?.includes('duration') ? 'duration' : 'size'
  if (node.type === 'array') {
    const items = node.items
    return items?.anyOf ? `list of ${typeOf(items)}` : `list of ${items?.type ?? 'objects'}`
  }
  return node.type ?? 'value'
}

/**
 * docs/configuration.md, rendered from the schema so the two cannot drift.
 * Every key must explain itself: one without a description throws, so
 * `npm run schema` (and the test that compares the docs) fail instead of
 * shipping an empty "Meaning" cell.
 */
export function renderReference(schema: unknown = ConfigSchema): string {
  const rows: string[] = []
  const walk = (node: Node, path: string, required: boolean) => {
    const children = node.properties ?? node.items?.properties
    if (path !== '' && !node.description?.trim())
      throw new Error(
        `src/config/schema.ts: ${path} has no description, so docs/configuration.md could not say what it means`,
      )
    if (children && path !== '') {
      rows.push(
        `| \`${path}\` | ${node.type === 'array' ? 'list' : 'section'} | ${required ? 'required' : '—'} | ${node.description ?? ''}${restartNote(path)} |`,
      )
    }
    if (children) {
      const req = new Set((node.properties ? node.required : node.items?.required) ?? [])
      const prefix = node.type === 'array' ? `${path}[]` : path
      for (const [key, child] of Object.entries(children)) {
        walk(child, prefix ? `${prefix}.${key}` : key, req.has(key) && child.default === undefined)
      }
      return
    }
    const def =
      node.default === undefined ? (required ? 'required' : '—') : `\`${JSON.stringify(node.default)}\``
    rows.push(
      `| \`${path}\` | ${typeOf(node)} | ${def} | ${(node.description ?? '').replace(/\|/g, '\\|')}${restartNote(path)} |`,
    )
    const mapping = switchMapping(node)
    for (const [key, child] of Object.entries(mapping?.properties ?? {})) walk(child, `${path}.${key}`, false)
  }
  walk(JSON.parse(JSON.stringify(schema)) as Node, '', true)
  return `# Configuration reference

Generated from the schema in \`src/config/schema.ts\` by \`npm run schema\`; a test keeps it in step.
Durations accept \`500ms\`, \`30s\`, \`5m\`, \`12h\`, \`1d\` or a number of seconds; sizes \`512kb\`,
\`1mb\` or a number of bytes. An integer option takes a whole number: \`2.5\`, written or from a
variable, is an error, as is \`1e3\` from a variable (it would be read as 1). \`\${VAR}\` and \`\${VAR:-default}\` are replaced from the environment;
any other \`\${…}\`, and a bare \`$VAR\` where a secret goes, is an error, never kept as text.
\`$$\` is no escape, as it is in docker compose: \`$\${VAR}\` is an error too. A literal \`\${\` cannot
be written in the file: put the text in a variable and write \`\${VAR}\`, as what a variable brings in is not read again.
A problem never quotes what a variable named like a secret (\`SECRET\`, \`PASSWORD\`, \`TOKEN\`,
\`KEY\`, …) or one in a secret option put in: it says \`[redacted: the value of NAME]\`. What
a secret option (\`clientSecret\`, \`session.secret\`, a \`clientKey\` or TLS \`key\` written in)
takes from a variable is not quoted at any other option either, whatever that one's variable is called.
Unknown keys are errors. [routes.yaml](../routes.yaml) is a commented example. The file is a
regular file, or a symlink to one as in a ConfigMap volume, of at most 1 MiB; anything else is
refused by name. Lists and mappings nest at most 32 levels deep, and the file holds at most
100,000 nodes (keys, values, lists, mappings), an alias counted as all it brings in: no config
comes near either, and they keep its parse within seconds and a few hundred MB. Each is refused
at the line where the file passes it.

The file is UTF-8 and one YAML document. YAML's own tags (\`!!str\` keeps a value as text)
are read, no others (\`!vault\`, \`!!binary\`); \`<<\` merge keys are not (YAML 1.2 has none: an
alias, \`*name\`, stands for a whole value); a key set twice in a mapping is an error, named by
its option. A number YAML reads without its text (\`12e3\` is 12000, \`0x1F\` 31) is refused where
the option takes text, an alias's option too (\`port: &p 0x1F90\` then \`clientId: *p\`): quote it;
\`1e309\` is out of range.

A running gateway reloads this file on \`SIGHUP\` and when it changes, checked whole first; the
settings read only at start (${RESTART_SETTINGS.map(([path]) => `\`${path}\``).join(', ')}) say
"Needs a restart" below: a reload that changes one is refused, and the running config kept. See
[deployment.md](deployment.md#reloading-the-config).

| Key | Type | Default | Meaning |
| --- | --- | --- | --- |
${rows.join('\n')}

## Example

\`\`\`yaml
server:   { publicUrl: https://app.example.com }
oidc:
  issuer: https://idp.example.com
  clientId: my-bff
  clientSecret: \${OIDC_CLIENT_SECRET}
session:
  secret: \${SESSION_SECRET}
  store: redis://redis:6379/0
routes:
  - path: /api/orders
    upstream: http://orders:8080
    rewritePath: /v1/orders
  - path: /api/reports
    upstream: http://reports:8080
    token: client
    scopes: [reports.read]
  - path: /
    upstream: http://frontend:8080
    token: none
    csrf: false
\`\`\`
`
}
