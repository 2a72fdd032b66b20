import t from 'tap'
import { BoundedMap } from '../src/bounded-map.js'

t.test('past its bound it evicts the least recently used entry and says which', async (t) => {
  const evicted: string[] = []
  const map = new BoundedMap<string, number>(2, (key, value) => evicted.push(`${key}=${value}`))
  map.set('a', 1)
  map.set('b', 2)
  t.equal(map.use('a'), 1, 'use reads the value')
  map.set('c', 3)
  t.same(evicted, ['b=2'], 'b was the coldest once a was used')
  t.equal(map.size, 2)
  t.equal(map.get('b'), undefined)
  t.equal(map.oldest(), 1, 'a is now the first to go')
})

t.test('get and replace leave the order alone; set and use make a key the most recent', async (t) => {
  const map = new BoundedMap<string, number>(2)
  map.set('a', 1)
  map.set('b', 2)
  t.equal(map.get('a'), 1)
  map.replace('a', 10)
  t.equal(map.oldest(), 10, 'a replaced in place, still the oldest')
  map.replace('z', 26)
  t.equal(map.get('z'), undefined, 'replace never adds a key')
  map.set('a', 11)
  t.equal(map.oldest(), 2, 'set made a the most recent')
  map.set('c', 3)
  t.same([map.get('a'), map.get('b'), map.get('c')], [11, undefined, 3])
})

t.test('delete and clear are not evictions', async (t) => {
  const evicted: string[] = []
  const map = new BoundedMap<string, number>(1, (key) => evicted.push(key))
  map.set('a', 1)
  t.equal(map.delete('a'), true)
  map.set('b', 2)
  map.clear()
  t.equal(map.size, 0)
  t.same(evicted, [])
})

t.test(
  'the newest key used or set again stays newest; once deleted or evicted it is forgotten',
  async (t) => {
    const evicted: string[] = []
    const map = new BoundedMap<string, number>(2, (key) => evicted.push(key))
    map.set('a', 1)
    map.set('b', 2)
    t.equal(map.use('b'), 2)
    map.set('b', 3)
    t.equal(map.oldest(), 1, 'a is still the oldest')
    t.equal(map.get('b'), 3, 'set on the newest key stores the value')
    map.delete('b')
    map.set('c', 4)
    map.use('a')
    map.set('d', 5)
    t.same(evicted, ['c'], 'a became newest by use after b was deleted')
    map.clear()
    map.set('e', 6)
    t.equal(map.size, 1, 'nothing forgotten survives a clear')

    const one = new BoundedMap<string, number>(0, (key) => evicted.push(key))
    one.set('x', 1)
    t.equal(one.size, 0, 'a bound of 0 holds nothing')
    one.set('x', 2)
    t.equal(one.size, 0, 'not even the key it just evicted')
  },
)
