import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { parseAllDocuments } from 'yaml'
import { run } from './run.js'

// biome-ignore lint/suspicious/noExplicitAny: a Kubernetes object, read field by field
export type K8sObject = Record<string, any>

const repo = fileURLToPath(new URL('../../', import.meta.url))

/** `kubectl kustomize dir`, parsed: every object the kustomization renders. */
export async function kustomize(dir: string): Promise<K8sObject[]> {
  const ran = await run('kubectl', ['kustomize', dir], 60_000)
  if (ran.code !== 0) throw new Error(`kubectl kustomize ${dir} exited ${ran.code}: ${ran.stderr}`)
  return parseAllDocuments(ran.stdout).map((doc) => {
    if (doc.errors.length > 0) throw doc.errors[0]
    return doc.toJS() as K8sObject
  })
}

/**
 * Where kubernetes-models keeps the model of an apiVersion and kind: the
 * Kubernetes API's own, or the Prometheus Operator's for its CRDs.
 */
function modelModule({ apiVersion, kind }: K8sObject): string {
  const [group, version] = String(apiVersion).includes('/') ? String(apiVersion).split('/') : ['', apiVersion]
  if (group === 'monitoring.coreos.com')
    return `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`
  return `kubernetes-models/${group ? `${group}/` : ''}${version}/${kind}`
}

/**
 * kustomize wraps a long Secret value's base64 at 76 characters; the API
 * server decodes `data` with Go's encoding/base64, which ignores newlines,
 * and the validator's `byte` format does not, so it sees the value unwrapped.
 */
function asDecoded(object: K8sObject): K8sObject {
  if (object.kind !== 'Secret' || !object.data) return object
  const data = Object.fromEntries(
    Object.entries(object.data as Record<string, string>).map(([k, v]) => [k, v.replace(/[\r\n]/g, '')]),
  )
  return { ...object, data }
}

/**
 * Validates each object against the JSON schema generated from the
 * Kubernetes OpenAPI document (kubernetes-models' validators: types,
 * required fields, enums, formats). Resolves with one message per problem.
 */
export async function schemaProblems(objects: readonly K8sObject[]): Promise<string[]> {
  const problems: string[] = []
  for (const object of objects) {
    const name = `${object.kind}/${object.metadata?.name}`
    let Model: new (data: K8sObject) => { validate(): void }
    try {
      Model = (await import(modelModule(object)))[object.kind]
    } catch {
      problems.push(`${name}: no schema for ${object.apiVersion} ${object.kind}`)
      continue
    }
    try {
      new Model(asDecoded(object)).validate()
    } catch (err) {
      problems.push(`${name}: ${(err as Error).message}`)
    }
  }
  return problems
}

/**
 * The schema's validators let unknown fields through, as a lenient API
 * server would; kubectl's default is strict field validation, and a
 * misspelt `readOnlyRootFilesytem` would silently drop a protection. So each
 * object is also type-checked as an object literal against the same
 * models' TypeScript interfaces, whose excess-property check names every
 * field the schema does not have. Resolves with one message per problem.
 */
export function unknownFieldProblems(objects: readonly K8sObject[]): string[] {
  const file = join(repo, 'test/deploy/rendered-objects.generated.ts')
  const source = objects
    .map(
      (object, i) =>
        `import type { I${object.kind} as T${i} } from '${modelModule(object)}'\n` +
        `export const o${i}: T${i} = ${JSON.stringify(object)}\n`,
    )
    .join('')
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  }
  const host = ts.createCompilerHost(options)
  const getSourceFile = host.getSourceFile
  host.getSourceFile = (name, language, ...rest) =>
    name === file
      ? ts.createSourceFile(name, source, language)
      : getSourceFile.call(host, name, language, ...rest)
  const fileExists = host.fileExists
  host.fileExists = (name) => name === file || fileExists.call(host, name)
  const readFile = host.readFile
  host.readFile = (name) => (name === file ? source : readFile.call(host, name))
  // The generated module is ESM, as this package is.
  host.getCurrentDirectory = () => dirname(file)
  const program = ts.createProgram([file], options, host)
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1
    const object = objects[Math.floor(line / 2)]
    const where = object ? `${object.kind}/${object.metadata?.name}` : (d.file?.fileName ?? '')
    return `${where}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`
  })
}

/** The value of a `KEY=value` line of an env file. */
export function envFile(path: string): Record<string, string> {
  return Object.fromEntries(
    readFileSync(path, 'utf8')
      .split('\n')
      .filter((line) => line.includes('=') && !line.startsWith('#'))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  )
}
