import t from 'tap'
import { type LateAnswer, LateAnswers, lateAnswerOf } from '../../src/oidc/late-answer.js'

/** A call that answers when told, and shows whether it was given up. */
function pendingCall() {
  let answer!: (value: string) => void
  let signal: AbortSignal | undefined
  const call = (s: AbortSignal) => {
    signal = s
    return new Promise<string>((resolve, reject) => {
      answer = resolve
      s.addEventListener('abort', () => reject(s.reason))
    })
  }
  return { call, answer: (v: string) => answer(v), aborted: () => signal?.aborted === true }
}

const settle = (outcome: { value: string } | { error: unknown }): LateAnswer<string> =>
  'value' in outcome ? { tokens: outcome.value } : { rotated: undefined }

t.test('an answer in time is the answer', async (t) => {
  const late = new LateAnswers(1)
  t.equal(await late.within(1_000, true, async () => 'now', settle), 'now')
  t.equal(late.awaited, 0)
})

t.test('an error in time is the error, with no late answer', async (t) => {
  const late = new LateAnswers(1)
  const refused = new Error('refused')
  const err = await late.within(1_000, true, () => Promise.reject(refused), settle).catch((e: unknown) => e)
  t.equal(err, refused)
  t.equal(lateAnswerOf(err), undefined)
})

t.test('past the timeout: a timeout now, the answer later', async (t) => {
  const late = new LateAnswers(1)
  const pending = pendingCall()
  const err = await late.within(20, true, pending.call, settle).catch((e: unknown) => e)
  t.match(err, { name: 'TimeoutError' }, 'reported as any IdP timeout is')
  t.notOk(pending.aborted(), 'the call goes on')
  t.equal(late.awaited, 1)
  const answer = lateAnswerOf<string>(err)!
  t.ok(answer, 'the timeout carries the answer to come')
  // Found through a wrapping error's cause too, as the caller's classification wraps it.
  t.equal(lateAnswerOf(new Error('wrapped', { cause: err })), answer)
  pending.answer('tokens')
  t.same(await answer, { tokens: 'tokens' })
  t.equal(late.awaited, 0, 'the slot is free again')
})

t.test('at most `max` late answers are awaited; past them a call is given up at its timeout', async (t) => {
  const late = new LateAnswers(1)
  const kept = pendingCall()
  const keptErr = await late.within(20, true, kept.call, settle).catch((e: unknown) => e)
  const dropped = pendingCall()
  const droppedErr = await late.within(20, true, dropped.call, settle).catch((e: unknown) => e)
  t.match(droppedErr, { name: 'TimeoutError' })
  t.ok(dropped.aborted(), 'given up: no slot was free')
  t.equal(lateAnswerOf(droppedErr), undefined, 'and no answer is awaited')
  kept.answer('tokens')
  await lateAnswerOf(keptErr)
  const again = pendingCall()
  const againErr = await late.within(20, true, again.call, settle).catch((e: unknown) => e)
  t.notOk(again.aborted(), 'a slot freed is taken again')
  again.answer('x')
  await lateAnswerOf(againErr)
})

t.test('a late failure settles too', async (t) => {
  const late = new LateAnswers(1)
  let fail!: (err: Error) => void
  const err = await late
    .within(
      20,
      true,
      () =>
        new Promise<string>((_, reject) => {
          fail = reject
        }),
      settle,
    )
    .catch((e: unknown) => e)
  fail(new Error('invalid_grant'))
  t.same(await lateAnswerOf(err), { rotated: undefined })
  t.equal(late.awaited, 0)
})

t.test('with no wait (oidc.lateAnswerWait 0), a call is given up at its timeout', async (t) => {
  const late = new LateAnswers(1)
  const pending = pendingCall()
  const err = await late.within(20, false, pending.call, settle).catch((e: unknown) => e)
  t.match(err, { name: 'TimeoutError' })
  t.ok(pending.aborted())
  t.equal(lateAnswerOf(err), undefined)
  t.equal(late.awaited, 0)
})

t.test("one provider's late answers never take another's slots", async (t) => {
  // A slow or hostile provider whose every refresh times out fills its
  // own bound; another provider's refresh that times out meanwhile is
  // still awaited, or the rotated refresh token its IdP issued is lost
  // and the session's next redemption, a replay, ends its grant.
  const late = new LateAnswers(1)
  const hostile = pendingCall()
  const hostileErr = await late
    .within(20, true, hostile.call, settle, 'https://partner.example')
    .catch((e) => e)
  t.ok(lateAnswerOf(hostileErr), "partner's answer is awaited")
  const honest = pendingCall()
  const honestErr = await late.within(20, true, honest.call, settle, 'https://corp.example').catch((e) => e)
  t.match(honestErr, { name: 'TimeoutError' })
  t.notOk(honest.aborted(), "corp's call goes on")
  t.ok(lateAnswerOf(honestErr), 'and its answer is awaited')
  const more = pendingCall()
  const moreErr = await late.within(20, true, more.call, settle, 'https://partner.example').catch((e) => e)
  t.ok(more.aborted(), "partner's own bound still holds")
  t.equal(lateAnswerOf(moreErr), undefined)
  honest.answer('corp tokens')
  t.same(await lateAnswerOf(honestErr), { tokens: 'corp tokens' })
  hostile.answer('x')
  await lateAnswerOf(hostileErr)
  t.equal(late.awaited, 0, 'every slot is free again')
})
