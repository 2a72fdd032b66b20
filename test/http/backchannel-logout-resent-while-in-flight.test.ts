import t, { type Test } from 'tap'
import { gatehouseError } from '../../src/errors.js'
import type { SessionStore } from '../../src/session/types.js'
import { twoSessionsOfDave } from '../helpers/logout.js'
import { startRedis } from '../helpers/redis.js'
import { pollUntil } from '../helpers/within.js'

/**
 * Holds every session delete of `store` until `finish` or `fail`:
 * `reached` resolves once the first delivery of a logout token is
 * provably carrying it out, past its `jti` claim.
 */
function holdDeletes(store: SessionStore) {
  const remove = store.delete.bind(store)
  let reach!: () => void
  const reached = new Promise<void>((resolve) => {
    reach = resolve
  })
  let settle!: (failed: boolean) => void
  const settled = new Promise<boolean>((resolve) => {
    settle = resolve
  })
  store.delete = async (id) => {
    reach()
    if (await settled) throw gatehouseError('GATEHOUSE_ERR_STORE_UNAVAILABLE')
    return remove(id)
  }
  return {
    reached,
    finish: () => settle(false),
    fail: () => settle(true),
    restore: () => {
      store.delete = remove
    },
  }
}

/** The stack on the memory store, or on a real redis-server of its own. */
async function onStore(t: Test, kind: 'memory' | 'redis') {
  if (kind === 'memory') return twoSessionsOfDave(t)
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  return twoSessionsOfDave(t, { store: redis.url, keyPrefix: redis.prefix })
}

for (const kind of ['memory', 'redis'] as const) {
  /**
   * A second delivery of a logout token that came while the first was
   * still carrying it out was refused for good (400 "already used"): if
   * the first then failed, its 503 perhaps never reaching the IdP (its
   * connection timed out), the IdP held the 400 as final and the user's
   * sessions ran on. A token only held is now a 503 with Retry-After.
   */
  t.test(
    `${kind}: a delivery while the first is carried out is asked to come again, not refused`,
    async (t) => {
      const { store, post, ended } = await onStore(t, kind)
      const hold = holdDeletes(store)
      t.teardown(hold.restore)

      const first = post()
      await hold.reached
      const second = await post()
      t.equal(second.status, 503, 'the duplicate is not refused as a replay')
      t.equal(second.json().error, 'logout_in_progress')
      t.ok(Number(second.headers.get('retry-after')) >= 1, 'and says when to send it again')

      hold.finish()
      t.equal((await first).status, 200, 'the first delivery carries it out')
      t.ok(await ended(), 'both sessions ended')
      const third = await post()
      t.equal(third.status, 400, 'once carried out, a delivery is a replay')
      t.match(third.json().message, /already used/)
    },
  )

  t.test(`${kind}: a delivery that came while the first failed is taken when sent again`, async (t) => {
    const { store, post, ended } = await onStore(t, kind)
    const hold = holdDeletes(store)
    t.teardown(hold.restore)

    const first = post()
    await hold.reached
    const second = await post()
    t.equal(second.status, 503, 'the duplicate is asked to come again')

    hold.fail()
    t.equal((await first).status, 503, 'the first delivery failed')
    hold.restore()
    t.notOk(await ended(), 'no session was ended')

    // The first delivery's 503 left the logout owed, and the gateway
    // carries it out itself 250 ms on (owed-logouts.ts): a resend that
    // meets that pass at work is asked to come again, and is taken once
    // the pass is done. Refused as a replay (400), it would be the defect.
    let again = await post()
    if (again.status === 503 && again.json().error === 'logout_in_progress') {
      await pollUntil(ended, 5_000)
      again = await post()
    }
    t.equal(again.status, 200, "the duplicate's resend is taken")
    t.ok(await ended(), 'both sessions ended')
  })
}
