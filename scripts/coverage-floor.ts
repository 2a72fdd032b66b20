/**
 * Fails when the coverage of the last test run with coverage on falls under
 * the floor: `npm test -- --no-disable-coverage --coverage-report=json-summary`,
 * then `npm run coverage:floor`. .ci/run does both.
 *
 * tap 21 enforces only 100 % or nothing, so the floor is checked here. The
 * floors sit a little under the level measured when they were set (see
 * FLOOR), so which lines a timing-dependent test happens to reach cannot
 * fail CI; raise them when coverage rises.
 */
import { readFileSync } from 'node:fs'

// Measured on 2026-11-28 over the whole suite: lines 92.26 %, branches 84.88 % (Node 20, commit
// 7a47c03); lines 91.28 %, branches 85.3 % (Node 24, .ci/run, commit 3b587c7). Runs differ by about a
// point in lines: coverage of code that child processes run (dev/, demo/) is merged only
// approximately. After the issue 12–16 merges the whole suite measured lines 90.2–90.7 %,
// branches 84.4–84.5 % (Node 24, .ci/run): the new code (WebSockets, Sentinel, PAR…) is less
// covered, and lines sit too close to 90 for a floor that must not fail on noise. Raising them
// back is open work on issue 16.
const FLOOR = { lines: 89, branches: 83 } as const

const file = new URL('../.tap/report/coverage-summary.json', import.meta.url)
let total: Record<keyof typeof FLOOR, { pct: number }>
try {
  total = (JSON.parse(readFileSync(file, 'utf8')) as { total: typeof total }).total
} catch {
  console.error('coverage: no .tap/report/coverage-summary.json; run the suite with coverage first')
  process.exit(1)
}
const below = Object.entries(FLOOR).filter(([key, floor]) => total[key as keyof typeof FLOOR].pct < floor)
console.log(
  `coverage: ${Object.entries(FLOOR)
    .map(([key, floor]) => `${key} ${total[key as keyof typeof FLOOR].pct} % (floor ${floor} %)`)
    .join(', ')}${below.length > 0 ? `: under the floor for ${below.map(([key]) => key).join(', ')}` : ''}`,
)
process.exitCode = below.length > 0 ? 1 : 0
