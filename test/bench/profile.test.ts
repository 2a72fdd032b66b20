import t from 'tap'
import { type CpuProfile, difference, hottest, selfMicros, selfShares } from '../../bench/profile.js'

/** A profile whose samples fall on the named functions for the given µs each. */
function profile(spent: Record<string, number>): CpuProfile {
  const names = ['(root)', '(idle)', ...Object.keys(spent)]
  const nodes = names.map((functionName, i) => ({
    id: i + 1,
    callFrame: {
      functionName,
      url: functionName.startsWith('(') ? '' : `file:///x/src/${functionName}.js`,
      lineNumber: 0,
    },
  }))
  const samples: number[] = []
  const timeDeltas: number[] = []
  for (const [name, micros] of Object.entries({ '(idle)': 500, ...spent })) {
    samples.push(names.indexOf(name) + 1)
    timeDeltas.push(micros)
  }
  return { nodes, samples, timeDeltas }
}

t.test('shares are of busy time: idle is left out', async (t) => {
  const shares = selfShares(profile({ guard: 30, parse: 10 }))
  t.equal(shares.get('guard src/guard.js:1'), 0.75)
  t.equal(shares.get('parse src/parse.js:1'), 0.25)
  t.notOk(
    [...shares.keys()].some((name) => name.startsWith('(idle)')),
    'no idle entry',
  )
})

t.test('µs per request: each round scaled by its own CPU per request, then averaged', async (t) => {
  const micros = selfMicros({
    profiles: [profile({ guard: 50, parse: 50 }), profile({ guard: 25, parse: 75 })],
    cpuMicrosPerRequest: [100, 200],
  })
  // Round 1: 50 and 50; round 2: 50 and 150.
  t.equal(micros.get('guard src/guard.js:1'), 50)
  t.equal(micros.get('parse src/parse.js:1'), 100)
  t.throws(
    () => selfMicros({ profiles: [profile({ guard: 1 })], cpuMicrosPerRequest: [] }),
    /one CPU figure per profile/,
  )
})

t.test('the difference names what one side spends beyond the other, largest first', async (t) => {
  const a = new Map([
    ['guard', 5],
    ['writev', 40],
  ])
  const b = new Map([
    ['writev', 42],
    ['ceiling', 1],
  ])
  t.same(
    difference(a, b).map((r) => [r.name, r.delta]),
    [
      ['guard', 5],
      ['ceiling', -1],
      ['writev', -2],
    ],
  )
})

t.test('hottest still ranks functions by their share', async (t) => {
  const { mkdtempSync, writeFileSync } = await import('node:fs')
  const { join } = await import('node:path')
  const { tmpdir } = await import('node:os')
  const dir = mkdtempSync(join(tmpdir(), 'profile-'))
  t.teardown(async () => (await import('node:fs/promises')).rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'a.cpuprofile')
  writeFileSync(file, JSON.stringify(profile({ guard: 30, parse: 10 })))
  t.same(hottest(file, 1), [{ name: 'guard src/guard.js:1', selfPercent: 75 }])
})
