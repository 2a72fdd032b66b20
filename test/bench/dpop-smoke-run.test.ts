import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { withoutCoverage } from '../helpers/child-node.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

// `npm run bench:dpop` is not a test; a few hundred requests through it keep
// it from rotting. Speed is not asserted: only that both routes answered
// every request and the run reports its ratios.
t.test('the DPoP bench runs end to end and reports both ratios', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'bench', 'dpop.ts'), '--smoke'], {
    cwd: root,
    env: withoutCoverage(),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString()
  })
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  t.equal(code, 0, `the bench exits 0\n${stderr.slice(-3_000)}`)
  const report = JSON.parse(stdout.slice(stdout.indexOf('{'))) as Record<string, unknown>
  t.type(report.ratio, 'number')
  t.type(report.cpuRatio, 'number')
  t.ok((report.dpopRequestsPerSecond as number) > 0 && (report.bearerRequestsPerSecond as number) > 0)
})
