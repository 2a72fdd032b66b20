/**
 * The bound docs/performance.md and docs/security.md give for the keys a
 * process keeps ready to sign (`MAX_KEYS`), counted as `UpstreamProofs`
 * meets it: a key not held when a request needs it is made again, which
 * for an EC key's upstream signer is about 1 ms of CPU
 * (`bench/dpop-signer-churn.ts` measures it with real signers). Up to the
 * bound, sessions in rotation make each key once; one past it, the least
 * recently used key is always the next one asked for, and every request
 * makes one. Either way the cache never holds more than the bound.
 */
import t from 'tap'
import { KEY_IDLE_MS, KeyCache, MAX_KEYS } from '../../src/dpop/key-cache.js'

/** Asks for each of `sessions` keys in turn, `rounds` times, making the missing ones; counts what each round made. */
function rotate(sessions: number, rounds: number) {
  const cache = new KeyCache<string>(() => 0)
  const madePerRound: number[] = []
  for (let round = 0; round < rounds; round++) {
    let made = 0
    for (let i = 0; i < sessions; i++) {
      const id = `key-${i}`
      if (cache.use(id) !== undefined) continue
      made++
      cache.set(id, `signer-${i}`)
    }
    madePerRound.push(made)
  }
  let held = 0
  for (let i = 0; i < sessions; i++) if (cache.holds(`key-${i}`)) held++
  return { madePerRound, held }
}

t.test('the documented bound: 10,000 keys per cache', async (t) => {
  t.equal(MAX_KEYS, 10_000)
  t.equal(KEY_IDLE_MS, 5 * 60_000)
})

t.test('up to the bound, sessions in rotation make each key once', async (t) => {
  const { madePerRound, held } = rotate(MAX_KEYS, 3)
  t.same(madePerRound, [MAX_KEYS, 0, 0])
  t.equal(held, MAX_KEYS)
})

t.test(
  'one session past the bound, every request in rotation makes its key again, and the cache stays bounded',
  async (t) => {
    const { madePerRound, held } = rotate(MAX_KEYS + 1, 3)
    t.same(madePerRound, [MAX_KEYS + 1, MAX_KEYS + 1, MAX_KEYS + 1])
    t.equal(held, MAX_KEYS)
  },
)

t.test(
  "a session's requests in a row share one make: past the bound, it is the rotation that misses",
  async (t) => {
    const cache = new KeyCache<string>(() => 0)
    let made = 0
    for (let round = 0; round < 2; round++)
      for (let i = 0; i < MAX_KEYS + 1; i++)
        for (let request = 0; request < 2; request++) {
          if (cache.use(`key-${i}`) !== undefined) continue
          made++
          cache.set(`key-${i}`, 'signer')
        }
    t.equal(made, 2 * (MAX_KEYS + 1), 'one make per session per round, not per request')
  },
)
