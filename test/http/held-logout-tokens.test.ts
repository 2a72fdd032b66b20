/**
 * HeldLogoutTokens on its own: tokens that came while their issuer's keys
 * could not be fetched, tried on one timer until the keys answer, each
 * given up and said to be once it is past its life. What the keys answer
 * is the attempt's own, as backchannel-logout-while-the-keys-cannot-be-fetched.test.ts
 * gets it from the real IdP's JWKS taken down and brought back.
 */
import { pino } from 'pino'
import t from 'tap'
import {
  HeldHandover,
  HeldLogoutTokens,
  type HeldOutcome,
  type HeldToken,
  type HeldUntil,
} from '../../src/http/held-logout-tokens.js'

const lines: Record<string, unknown>[] = []
const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) })

// The retry timer is unref'd, as a closing gateway must not wait on it: this keeps the test's process up.
const alive = setInterval(() => {}, 60_000)
t.teardown(() => clearInterval(alive))

const token = (name: string, issuer = 'https://idp.example/'): HeldToken => ({
  token: name,
  issuer,
  idp: 'default',
  at: 0,
  log,
})

/** Attempts answered by `answers[token]` in turn (the last repeated); `tried` resolves once `n` were made in all. */
function scripted(answers: Record<string, HeldOutcome[]>) {
  const calls: string[] = []
  const waiters: { n: number; resolve: () => void }[] = []
  const attempt = async (held: HeldToken): Promise<HeldOutcome> => {
    calls.push(held.token)
    for (const w of waiters.filter((w) => w.n <= calls.length)) w.resolve()
    const mine = answers[held.token]!
    return mine[Math.min(calls.filter((c) => c === held.token).length, mine.length) - 1]!
  }
  const tried = (n: number) =>
    new Promise<void>((resolve) => (calls.length >= n ? resolve() : waiters.push({ n, resolve })))
  return { attempt, tried, calls }
}

t.test(
  'an issuer whose keys cannot be read is asked once a pass; a token not yet settled holds no other up',
  async (t) => {
    const run = scripted({ a: ['unreachable', 'later', 'settled'], b: ['settled'], c: ['settled'] })
    const held = new HeldLogoutTokens({ attempt: run.attempt, lifeMs: 60_000 })
    t.teardown(() => held.close(log))
    for (const name of ['a', 'b']) held.hold(token(name))
    held.hold(token('a'))
    held.hold(token('c', 'https://other.example/'))
    t.equal(held.size, 3, 'a token held already is held once')
    await run.tried(2)
    t.same(
      run.calls,
      ['a', 'c'],
      'first pass: the issuer that is down is asked once, the other issuer on its own',
    )
    await run.tried(5)
    t.same(
      run.calls.slice(2),
      ['a', 'b', 'a'],
      'then a, not yet settled, is passed over, and b is carried out',
    )
    // Until the pass that made the last call has finished with it.
    await new Promise((resolve) => setImmediate(resolve))
    t.equal(held.size, 0, 'each dropped once settled')
  },
)

t.test('a token past its life is lost, and said to be; closing drops the rest, and says so', async (t) => {
  let now = 0
  const run = scripted({ old: ['unreachable'], young: ['unreachable'] })
  const held = new HeldLogoutTokens({ attempt: run.attempt, lifeMs: 10_000, clock: () => now })
  held.hold(token('old'))
  await run.tried(1)
  now = 5_000
  held.hold(token('young'))
  now = 10_000
  await run.tried(2)
  t.same(run.calls, ['old', 'young'], 'the old one is not tried past its life')
  t.match(lines.at(-1), { code: 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST', reason: 'unverified', idp: 'default' })
  t.equal(held.size, 1)
  held.close(log)
  t.match(lines.at(-1), { code: 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST', reason: 'closed', unverified: 1 })
  held.hold(token('late'))
  t.equal(held.size, 0, 'nothing is held once closed')
})

t.test(
  'what a closing app held passes to the newest other app of its scope, within the life it had; with none, it is lost and said to be',
  async (t) => {
    let now = 0
    const clock = () => now
    const handover = new HeldHandover<HeldToken>(log)
    const taken: Record<string, string[]> = { older: [], newer: [], other: [] }
    const taker = (name: string) => (held: readonly HeldUntil<HeldToken>[]) =>
      void taken[name]!.push(...held.map((h) => h.token))
    const untakeOlder = handover.serve('', taker('older'))
    const untakeNewer = handover.serve('', taker('newer'))
    handover.serve('shop', taker('other'))

    const retiring = new HeldLogoutTokens({
      attempt: scripted({ a: ['unreachable'] }).attempt,
      lifeMs: 10_000,
      clock,
    })
    retiring.hold(token('a'))
    now = 4_000
    const released = retiring.release()
    t.same(
      released.map((h) => [h.token, h.until]),
      [['a', 10_000]],
      'released with when it is to be given up, not a new life',
    )
    handover.pass('', released)
    t.same(taken, { older: [], newer: ['a'], other: [] }, 'to the newest app of the scope')

    // The app that took it holds it to its first life.
    const run = scripted({ a: ['unreachable'] })
    const next = new HeldLogoutTokens({ attempt: run.attempt, lifeMs: 10_000, clock })
    t.teardown(() => next.close(log))
    next.hold(token('a'), released[0]!.until)
    await run.tried(1)
    now = 10_000
    const lost = lines.length
    // Its next pass (its timer is the class's own) finds it past its life: a line, and no attempt.
    await new Promise<void>((resolve, reject) => {
      const bound = setTimeout(() => reject(new Error('not given up within 5 s')), 5_000)
      const poll = setInterval(() => {
        if (lines.length === lost) return
        clearInterval(poll)
        clearTimeout(bound)
        resolve()
      }, 10)
    })
    t.match(lines.at(-1), { code: 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST', reason: 'unverified' })
    t.equal(next.size, 0, 'given up where the first app would have')

    untakeNewer()
    handover.pass('', [{ ...token('b'), until: 20_000 }])
    t.same(taken.older, ['b'], 'once the newer app has gone, to the one left')
    untakeOlder()
    handover.pass('', [
      { ...token('c'), until: 20_000 },
      { ...token('d'), until: 20_000 },
    ])
    t.match(lines.at(-1), { code: 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST', reason: 'closed', unverified: 2 })
    t.same(taken.other, [], "another frontend's app takes none of it")
  },
)

t.test(
  "the last pass tries every issuer at once, whatever its backoff, and ends when the drain does, an issuer's try still hanging",
  async (t) => {
    const calls: string[] = []
    let hung = () => {}
    const hanging = new Promise<void>((resolve) => {
      hung = resolve
    })
    const held = new HeldLogoutTokens<HeldToken>({
      attempt: async (token) => {
        calls.push(token.token)
        if (token.token !== 'away') return 'settled'
        hung()
        // A JWKS fetch held open: it ends only with its timeout, past the drain.
        return new Promise<HeldOutcome>(() => {})
      },
      lifeMs: 60_000,
    })
    t.teardown(() => held.close(log))
    held.hold(token('away', 'https://away.example/'))
    held.hold(token('back', 'https://back.example/'))
    const stop = new AbortController()
    const pass = held.lastPass(stop.signal)
    await hanging
    t.same(calls.sort(), ['away', 'back'], 'both issuers tried at once, before their first delay')
    t.equal(held.size, 1, "the issuer back has its token carried out; the other's is still held")
    stop.abort()
    await pass
    t.equal(held.lastPass(stop.signal), pass, 'once, however many ask')
  },
)
