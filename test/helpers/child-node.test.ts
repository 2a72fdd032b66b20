import { readdirSync, readFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import t from 'tap'
import { typescriptFlags } from './child-node.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const testFiles = readdirSync(join(root, 'test'), { recursive: true, encoding: 'utf8' })
  .filter((file) => file.endsWith('.ts'))
  .map((file) => join(root, 'test', file))

t.test('under tap, a TypeScript child loads with the test process’s own loader', async (t) => {
  t.ok(process.env.TAP, 'this runs under tap')
  t.ok(typescriptFlags.length > 0)
  const hook = process.execArgv.find((arg) => /^--import=.*\/typescript-resolve\.ts$/.test(arg))
  if (hook === undefined)
    t.ok(
      typescriptFlags.some((flag) => flag.includes('@tapjs/typescript')),
      "tap's loader",
    )
  else
    t.same(
      typescriptFlags,
      [`--import=${pathToFileURL(resolve(hook.slice('--import='.length))).href}`],
      'type stripping with the same resolve hook, by an absolute URL',
    )
  t.equal(
    typescriptFlags.includes('--import=tsx'),
    process.execArgv.includes('--import=tsx'),
    `tsx only where this process runs on it, or the two outputs merge into nonsense coverage: ${typescriptFlags.join(' ')}`,
  )
})

t.test('no test starts a TypeScript child with tsx and its coverage on', async (t) => {
  const helper = fileURLToPath(new URL('./child-node.ts', import.meta.url))
  const offenders = testFiles.filter((file) => {
    const source = readFileSync(file, 'utf8')
    return (
      file !== helper &&
      /['"]--import['"],\s*['"]tsx['"]|--import[= ]tsx/.test(source) &&
      !source.includes('withoutCoverage(')
    )
  })
  t.same(
    offenders.map((file) => relative(root, file)),
    [],
    'use typescriptFlags, or withoutCoverage where the child forks tsx itself (test/helpers/child-node.ts)',
  )
})
