import t from 'tap'
import { DEFAULT_RELOAD_RETRY, retryDelay } from '../../src/server/reload-retry.js'

t.test('the default retries wait 5, 10, 20 and 40 s, then a minute, and stop after five', async (t) => {
  const waits = Array.from({ length: DEFAULT_RELOAD_RETRY.attempts }, (_, i) =>
    retryDelay(DEFAULT_RELOAD_RETRY, i + 1),
  )
  t.same(waits, [5_000, 10_000, 20_000, 40_000, 60_000])
})
