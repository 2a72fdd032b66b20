import t from 'tap'
import { RepeatedLines, repeatedField } from '../src/repeated-lines.js'

t.test('a key is written once an interval; the next line written counts those held back', async (t) => {
  let now = 0
  const lines = new RepeatedLines(1_000, () => now)
  t.equal(lines.admit('a'), 0, 'the first is written')
  t.equal(lines.admit('a'), undefined)
  t.equal(lines.admit('a'), undefined)
  t.equal(lines.admit('b'), 0, 'each key has its own interval')
  now = 999
  t.equal(lines.admit('a'), undefined, 'not before the interval is over')
  now = 1_000
  t.equal(lines.admit('a'), 3, 'three held back')
  t.equal(lines.admit('a'), undefined)
  t.same(repeatedField(0), {}, 'nothing held back, no field')
  t.same(repeatedField(3), { repeated: 3 })
})

t.test('a flood of distinct keys is bounded: the least recent is forgotten and written again', async (t) => {
  const lines = new RepeatedLines(60_000, () => 0)
  t.equal(lines.admit('first'), 0)
  for (let i = 0; i < 10_000; i++) lines.admit(`key ${i}`)
  t.equal(lines.admit('first'), 0, 'forgotten, so written again rather than held in memory')
})
