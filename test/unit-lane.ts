/**
 * The fast lane, `npm run test:unit`: every unit test, found by the rule in
 * test/helpers/lanes.ts (a test file that loads nothing that starts a peer),
 * not by a list. tap runs two workers (test/unit-lane/worker-*.ts) side by
 * side, one per core; each takes the next file no worker has taken yet,
 * imports it and waits for its tests before taking another, so the two
 * stay busy whichever files are slow (a timeout that must be waited out,
 * thousands of property runs). A worker pays for loading TypeScript once
 * for all the files it runs. `npm test` runs each of them again, in a
 * process of its own, with everything else.
 * test/unit-lane.test.ts checks the rule both ways.
 */
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import { forbidChildProcesses, ROOT, unitTests } from './helpers/lanes.js'

// One directory of claims per run: the workers of a run are children of
// one tap process, named by its pid and, where Linux tells, its start time,
// so that a reused pid cannot find an earlier run's claims.
const RUNS = join(ROOT, '.tap', 'unit-lane')
const run = join(RUNS, `${process.ppid}-${startTime(process.ppid)}`)

function startTime(pid: number): string {
  try {
    // proc(5): the 22nd field of /proc/<pid>/stat, after the parenthesised command.
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]!
  } catch {
    return 'now'
  }
}

/** Takes `file` for this worker: true for exactly one worker of the run. */
function claim(index: number): boolean {
  try {
    closeSync(openSync(join(run, String(index)), 'wx'))
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  }
}

/**
 * The order the workers take files in: the longest first, so that the lane
 * does not end waiting for one slow file taken last while the other worker
 * idles. A property test runs thousands of cases, so those lead; then the
 * larger files. Both workers compute the same order.
 */
function longestFirst(files: string[]): string[] {
  const weight = (file: string) => (/\.property\.test\.ts$/.test(file) ? 1e9 : 0) + statSync(file).size
  return files
    .map((file) => ({ file, weight: weight(file) }))
    .sort((a, b) => b.weight - a.weight || a.file.localeCompare(b.file))
    .map(({ file }) => file)
}

/** Runs, one file at a time, every unit test file no other worker of this run has taken. */
export async function runUnitLane(): Promise<void> {
  mkdirSync(run, { recursive: true })
  // Earlier runs' claims: an hour is far longer than any lane runs.
  for (const old of readdirSync(RUNS)) {
    const path = join(RUNS, old)
    if (path !== run && statSync(path).mtimeMs < Date.now() - 3_600_000)
      rmSync(path, { recursive: true, force: true })
  }
  forbidChildProcesses()
  // A file's tests are the top-level t.test calls it makes while it loads;
  // each returns a promise that settles when that test has run.
  let started: Promise<unknown>[] = []
  const test = t.test.bind(t)
  t.test = ((...args: Parameters<typeof t.test>) => {
    const done = test(...args)
    started.push(done)
    return done
  }) as typeof t.test
  const files = longestFirst(unitTests())
  for (const [index, file] of files.entries()) {
    if (!claim(index)) continue
    started = []
    await import(pathToFileURL(file).href)
    await Promise.all(started)
  }
}
