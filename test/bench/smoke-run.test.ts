import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { BenchReport } from '../../bench/report.js'
import { runBenchScript } from '../helpers/bench-script.js'

// `npm run bench` is not a test, but a few hundred requests through it keep
// the script from rotting. Speed is not asserted here; what must hold at
// any speed is: every peer answered, the storm refreshed once, and the
// size limits.
// Its own budget, beyond the suite's 120 s per file: nine peer kinds start,
// sign in and take load, one after another.
t.setTimeout(300_000)
t.test('the bench script runs end to end against every peer', { timeout: 300_000 }, async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const { code, output } = await runBenchScript('run.ts', ['--smoke', '--out', out])
  t.equal(code, 0, `the bench exits 0\n${output.slice(-3_000)}`)

  const files = readdirSync(out).filter((f) => f.endsWith('.json'))
  t.equal(files.length, 1, 'it writes one JSON result')
  const report = JSON.parse(readFileSync(join(out, files[0]!), 'utf8')) as BenchReport
  t.equal(report.settings.gatehouse, 'src', 'the smoke run takes the sources: npm test builds nothing')
  t.same(
    report.peers.map((p) => p.peer),
    [
      'direct upstream',
      'node-http-undici',
      'fastify-http-proxy',
      'express-bff',
      'gatehouse-memory',
      'gatehouse-redis',
      'gatehouse-redis-cluster',
    ],
  )
  for (const peer of report.peers) {
    t.ok(peer.rounds[0]!.requests >= 300, `${peer.peer} answered every request`)
    t.equal(peer.failures, 0, `${peer.peer}: no errors and no non-2xx`)
    t.ok(peer.cpuMicrosPerRequest > 0, `${peer.peer}: CPU per request measured`)
  }
  for (const [store, storm] of Object.entries(report.storms)) {
    t.equal(storm.refreshGrants, 1, `${store} storm: exactly one refresh at the IdP`)
    t.equal(storm.refreshReplays, 0, `${store} storm: no refresh token replayed`)
    t.equal(storm.succeeded, storm.requests, `${store} storm: every call succeeded`)
  }
  t.same(Object.keys(report.storms), ['memory', 'redis'])
  t.ok(report.cookie.bytes > 0 && report.cookie.bytes <= 200, `cookie is ${report.cookie.bytes} bytes`)
  t.ok(report.memory.bytesPerSession <= 2048, `${report.memory.bytesPerSession} bytes per session`)
  t.equal(report.memory.sizeAfterOverflow, report.memory.sessions, 'the memory store stays at its cap')
  t.same(
    report.targets.map((target) => target.id),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
    'every target is reported',
  )
  t.equal(report.tracing.failures, 0, 'the tracing peers answered every request')
  t.ok(report.tracing.spansPerRequest > 0, 'the traced peer exported spans')
  t.ok(report.tracing.spansPerRequest < 2, 'a fraction of them: sampling applies')
  t.match(output, /PASS|FAIL/, 'the console shows each target with PASS or FAIL')
  t.match(output, /gatehouse-memory .*CPU +\d+ µs\/request/, 'the console shows CPU per request')
})
