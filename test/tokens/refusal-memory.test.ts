import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { gatehouseError } from '../../src/errors.js'
import { REFUSAL_MEMORY, RefusalMemory } from '../../src/tokens/refusal-memory.js'

function clocked() {
  let now = 1_000_000
  return {
    now: () => now,
    advance(ms: number) {
      now += ms
    },
  }
}

const refusal = () =>
  Object.assign(gatehouseError('GATEHOUSE_ERR_TOKEN_EXCHANGE_REFUSED', 'refused for its audience'), {
    reason: 'invalid_target',
  })

t.test('a refusal is answered again, same code and message, until REFUSAL_MEMORY has passed', async (t) => {
  const clock = clocked()
  const memory = new RefusalMemory(clock.now)
  const original = refusal()
  memory.refused('s1\naud', original, 'subject-a')
  const kept = memory.kept('s1\naud', 'subject-a')
  t.equal(kept?.code, original.code)
  t.equal(kept?.message, original.message)
  t.match(
    kept?.reason,
    /identity provider not asked.*\(invalid_target\)/,
    'the log says the IdP was not asked',
  )
  t.match(kept?.cause, { code: original.code, message: original.message }, 'the refusal is its cause')
  t.equal(memory.kept('s2\naud', 'subject-a'), undefined, "another session's exchange is asked")
  clock.advance(REFUSAL_MEMORY - 1)
  t.ok(memory.kept('s1\naud', 'subject-a'), 'still kept a millisecond before')
  clock.advance(1)
  t.equal(memory.kept('s1\naud', 'subject-a'), undefined, 'asked again once it has passed')
})

t.test('a new subject token is asked for at once, and the old refusal is forgotten', async (t) => {
  const clock = clocked()
  const memory = new RefusalMemory(clock.now)
  memory.refused('s1\naud', refusal(), 'subject-a')
  t.equal(memory.kept('s1\naud', 'subject-b'), undefined, 'a refreshed subject is asked for')
  t.equal(memory.kept('s1\naud', 'subject-a'), undefined, 'and the refusal of the old one is gone')
})

// An entry goes only when read again or evicted, so up to 100,000 stay:
// each held the IdP's whole answer (Response, body, stacks), about 8 KB,
// some 840 MB at the bound.
t.test('a remembered refusal does not hold the IdP answer it came from', async (t) => {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const memory = new RefusalMemory(clocked().now)
  let answer: object | undefined = { body: 'x'.repeat(1_000) }
  const held = new WeakRef(answer)
  memory.refused(
    's1\naud',
    gatehouseError('GATEHOUSE_ERR_TOKEN_EXCHANGE_REFUSED', 'refused', answer),
    'subject-a',
  )
  answer = undefined
  // A WeakRef keeps its target alive to the end of the job that made it.
  await new Promise((resolve) => setImmediate(resolve))
  gc()
  t.equal(held.deref(), undefined, 'the answer is collected')
  t.ok(memory.kept('s1\naud', 'subject-a'), 'while the refusal is remembered')
})
