import t from 'tap'
import { CookieNamesHad } from '../../src/proxy/cookie-names-had.js'

t.test("each config's names are kept with every earlier config's, the running config's first", async (t) => {
  const had = new CookieNamesHad()
  t.same(had.note({ names: ['a', 'a-login'], starts: ['a-login.'] }), {
    names: ['a', 'a-login'],
    starts: ['a-login.'],
  })
  t.same(had.note({ names: ['b', 'b-login'], starts: ['b-login.'] }), {
    names: ['b', 'b-login', 'a', 'a-login'],
    starts: ['b-login.', 'a-login.'],
  })
})

t.test(
  'earlier names are bounded, the oldest dropped first; the running config’s are never dropped',
  async (t) => {
    const had = new CookieNamesHad()
    for (let n = 0; n < 100; n++) had.note({ names: [`c${n}`], starts: [] })
    const kept = had.note({ names: ['c0'], starts: [] }).names
    t.equal(kept.length, 64, 'at most 64 names')
    t.equal(kept[0], 'c0', 'the running config’s name, though noted first long ago')
    t.notOk(kept.includes('c36'), 'the oldest others are gone')
    t.ok(kept.includes('c37') && kept.includes('c99'), 'the newest are kept')
    const many = Array.from({ length: 80 }, (_, n) => `f${n}`)
    t.equal(
      had.note({ names: many, starts: [] }).names.length,
      80,
      'a config with more names than the bound keeps them all',
    )
  },
)
