import t from 'tap'
import { gatehouseError } from '../../src/errors.js'
import { sessionRefOf } from '../helpers/app.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

/**
 * Log out everywhere with the store failing part way: the answer is a
 * 503, and the user must be able to ask again. The request's own session
 * was ended alongside the others, so when another's end failed the user
 * was left signed out here (401 on asking again) with that other session
 * still running, and nothing left to end it with.
 */
t.test('log out everywhere that the store fails part way can be asked again', async (t) => {
  const stack = await startStack(t, {
    routes: (upstream) => [route('/api/orders', upstream)],
    config: { logLevel: 'silent' },
  })
  const base = stack.gateway.url
  const app = stack.gateway.app
  const store = app.gatehouse.stores.sessions
  const here = await login(base, { user: 'erin' })
  const there = await login(base, { user: 'erin' })
  const current = sessionRefOf(app, here.jar.get(base, 'gatehouse')!).id

  // The store fails at the seam for every session but the request's own:
  // the others are taken (their grants handed back), the own deleted.
  const remove = store.delete.bind(store)
  const take = store.take.bind(store)
  const unless =
    <R>(ended: (id: string) => Promise<R>) =>
    async (id: string) => {
      if (id !== current) throw gatehouseError('GATEHOUSE_ERR_STORE_UNAVAILABLE')
      return ended(id)
    }
  store.delete = unless(remove)
  store.take = unless(take)
  const failed = await apiCall(here.jar, `${base}/auth/logout-everywhere`, { method: 'POST' })
  t.equal(failed.status, 503, 'the failure is answered as one')
  store.delete = remove
  store.take = take

  const again = await apiCall(here.jar, `${base}/auth/logout-everywhere`, { method: 'POST' })
  t.equal(again.status, 200, 'asked again, it is carried out')
  t.equal((await apiCall(there.jar, `${base}/api/orders`)).status, 401, 'the other session ended')
  t.equal((await apiCall(here.jar, `${base}/api/orders`)).status, 401, 'and this one')
})
