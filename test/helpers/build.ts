import {
  copyFileSync,
  cpSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = fileURLToPath(new URL('../..', import.meta.url))

export interface TreeOptions {
  /** Copy dev/ too, as the published package carries it. Default false. */
  readonly dev?: boolean
  /** Packages left out of node_modules, as an installation without dev dependencies lacks them. */
  readonly without?: readonly string[]
}

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(join(dir, entry.name)) : [join(dir, entry.name)],
  )
}

/**
 * An installation of this checkout in `into`: `src/` compiled to `dist/` as
 * `npm run build` compiles it (file by file, which verbatimModuleSyntax
 * makes the same output, in a second rather than tsc's half minute),
 * package.json beside it, and node_modules linked from the checkout.
 */
export function buildTree(into: string, options: TreeOptions = {}): void {
  const config = ts.readConfigFile(join(root, 'tsconfig.build.json'), ts.sys.readFile)
  const { options: compilerOptions } = ts.parseJsonConfigFileContent(config.config, ts.sys, root)
  for (const file of files(join(root, 'src')).filter((f) => f.endsWith('.ts'))) {
    const out = join(into, 'dist', relative(join(root, 'src'), file).replace(/\.ts$/, '.js'))
    mkdirSync(dirname(out), { recursive: true })
    const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), {
      // package.json's "type": "module" makes NodeNext emit ES modules; a
      // lone file has no package.json to look at, so say so.
      compilerOptions: {
        ...compilerOptions,
        module: ts.ModuleKind.ESNext,
        moduleResolution: ts.ModuleResolutionKind.Bundler,
        sourceMap: false,
        declaration: false,
      },
      fileName: file,
    })
    writeFileSync(out, outputText)
  }
  copyFileSync(join(root, 'package.json'), join(into, 'package.json'))
  if (options.dev) cpSync(join(root, 'dev'), join(into, 'dev'), { recursive: true })
  const without = new Set(options.without ?? [])
  if (without.size === 0) {
    symlinkSync(join(root, 'node_modules'), join(into, 'node_modules'), 'dir')
    return
  }
  mkdirSync(join(into, 'node_modules'))
  for (const name of readdirSync(join(root, 'node_modules'))) {
    if (!without.has(name)) symlinkSync(join(root, 'node_modules', name), join(into, 'node_modules', name))
  }
}
