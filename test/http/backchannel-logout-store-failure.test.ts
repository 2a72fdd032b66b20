import { setTimeout as delay } from 'node:timers/promises'
import t from 'tap'
import { gatehouseError } from '../../src/errors.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { jarFetch } from '../helpers/login.js'
import { twoSessionsOfDave } from '../helpers/logout.js'
import { startRedis } from '../helpers/redis.js'
import { pollUntil } from '../helpers/within.js'

/**
 * A logout token whose sessions the store failed to end (the store down
 * half way through) is answered 503, and the IdP may send it again. Its
 * `jti` was noted as seen before the sessions were listed, so the second
 * delivery was refused as a replay (400) and the sessions the first one
 * did not reach ran on, though the IdP had signed the user out.
 */
t.test('a logout token the store failed to carry out is taken again when the IdP resends it', async (t) => {
  const { store, post, ended } = await twoSessionsOfDave(t)

  // The store fails at the seam, for every delete: as Redis gone mid-way would.
  const remove = store.delete.bind(store)
  store.delete = async () => {
    throw gatehouseError('GATEHOUSE_ERR_STORE_UNAVAILABLE')
  }
  const failed = await post()
  t.ok(failed.status >= 500, `the failed logout is not answered as done (HTTP ${failed.status})`)
  store.delete = remove

  const again = await post()
  t.equal(again.status, 200, 'the same token, sent again, is carried out')
  t.ok(await ended(), 'both sessions ended')
})

/**
 * The same with Redis itself gone half way: the store that failed to end
 * the sessions could not forget the `jti` either, so it stayed noted for
 * its 5 minutes and the resend, once Redis was back, was refused as a
 * replay (400) while both sessions ran on. The `jti` is now held only
 * briefly while the token is carried out, and kept for its 5 minutes once
 * it has been.
 */
t.test('a logout token is taken again after Redis died half way through carrying it out', async (t) => {
  if (process.env.REDIS_URL) return t.plan(0, 'fault injection needs a redis-server of our own')
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const { base, store, post, ended } = await twoSessionsOfDave(t, {
    store: redis.url,
    keyPrefix: redis.prefix,
  })

  // Redis dies as the first session is being ended: the real delete then fails.
  const remove = store.delete.bind(store)
  store.delete = async (id) => {
    store.delete = remove
    await redis.kill()
    return remove(id)
  }
  const failed = await post()
  t.equal(failed.status, 503, 'the failed logout is not answered as done')
  const retryAfter = Number(failed.headers.get('retry-after'))
  t.ok(retryAfter > 0, 'and says when to send it again')

  await redis.restart()
  await pollUntil(async () => (await jarFetch(new CookieJar(), `${base}/readyz`)).status === 200)
  // The IdP sends it again no sooner than the 503 asked. Meanwhile the
  // gateway carries out the logout it owes since the 503 (owed-logouts.ts)
  // on its own backoff: a resend that comes while that is at work is asked
  // to come again (503, logout in progress), as an IdP would be.
  let again: Awaited<ReturnType<typeof post>>
  let waited = retryAfter
  for (let tries = 0; ; tries++) {
    // The IdP's side of the protocol, not a wait for the gateway: the
    // token's hold is a Redis expiry of Retry-After's length, which no
    // clock of ours reaches, and the resend must come after it.
    await delay(waited * 1_000)
    again = await post()
    if (again.status !== 503 || tries === 3) break
    waited = Number(again.headers.get('retry-after'))
  }
  t.equal(again.status, 200, 'the resend is carried out, not refused as a replay')
  t.ok(await ended(), 'both sessions ended')
  t.equal((await post()).status, 400, 'and a delivery after that is a replay')
})
