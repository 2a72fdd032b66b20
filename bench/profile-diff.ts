/**
 * Function by function, what one peer spends per request beyond another:
 * two sets of `--cpu-prof` profiles (from `bench/components.ts --out`,
 * `bench/tracing.ts --profile-dir` or `npm run bench -- --profile`), each
 * profile with the CPU per request its round measured. Shares of busy time
 * are turned back into µs per request before subtracting, so a round on a
 * slow spell of the VM weighs as what it cost, not as a share.
 *
 *   npx tsx bench/profile-diff.ts --a PATH --a-cpu N[,N...] --b PATH --b-cpu N[,N...] [--top 40]
 *
 * PATH is a directory (its `.cpuprofile` files, by name) or the start of
 * the files' names (`DIR/Gatehouse-memory-store`); the CPU figures are in
 * the same order. Prints the largest differences both ways, and their sum.
 */
import { readdirSync, statSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import { difference, type FunctionDifference, readProfile, selfMicros } from './profile.js'

const { values: args } = parseArgs({
  options: {
    a: { type: 'string' },
    'a-cpu': { type: 'string' },
    b: { type: 'string' },
    'b-cpu': { type: 'string' },
    top: { type: 'string', default: '40' },
  },
})

function profilesAt(path: string): string[] {
  const isDir = statSync(path, { throwIfNoEntry: false })?.isDirectory() === true
  const dir = isDir ? path : dirname(path)
  const start = isDir ? '' : basename(path)
  const files = readdirSync(dir)
    .filter((name) => name.endsWith('.cpuprofile') && name.startsWith(start))
    .sort()
    .map((name) => join(dir, name))
  if (files.length === 0) throw new Error(`no .cpuprofile files at ${path}`)
  return files
}

function side(name: 'a' | 'b') {
  const path = args[name]
  const cpu = args[`${name}-cpu`]
  if (!path || !cpu) throw new Error(`--${name} and --${name}-cpu are both needed`)
  return selfMicros({
    profiles: profilesAt(path).map(readProfile),
    cpuMicrosPerRequest: cpu.split(',').map(Number),
  })
}

const rows = difference(side('a'), side('b'))
const top = Number(args.top)
const line = (r: FunctionDifference) =>
  `${r.delta.toFixed(2).padStart(7)} ${r.a.toFixed(2).padStart(7)} ${r.b.toFixed(2).padStart(7)}  ${r.name}`
console.log(`${'a − b'.padStart(7)} ${'a'.padStart(7)} ${'b'.padStart(7)}  function (µs per request)`)
for (const r of rows.slice(0, top)) console.log(line(r))
console.log('…')
const below = rows.slice(top).filter((r) => r.delta < 0)
for (const r of below.slice(-top)) console.log(line(r))
console.log(`sum of the differences: ${rows.reduce((sum, r) => sum + r.delta, 0).toFixed(1)} µs per request`)
