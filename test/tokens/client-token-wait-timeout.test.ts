import t from 'tap'
import { errorCatalogue, isGatehouseError } from '../../src/errors.js'
import { ClientTokens } from '../../src/tokens/client-tokens.js'
import { MemoryLockService } from '../../src/tokens/memory-lock.js'

t.test(
  'a client route that outwaits another fetch reports a client-token error, not a refresh',
  async (t) => {
    const locks = new MemoryLockService()
    t.teardown(() => locks.close())
    let fetched = 0
    const tokens = new ClientTokens({
      locks,
      oidc: {
        async clientCredentials() {
          fetched++
          return { accessToken: 'never', expiresAt: Date.now() + 60_000 }
        },
      },
      refreshBefore: 5_000,
      refreshWait: 50,
      lockTtl: 10_000,
      now: Date.now,
    })
    // Another instance is fetching this token and never finishes.
    const held = await locks.tryAcquire('client:reports.read', 10_000)
    t.teardown(() => held?.release())

    const err = await tokens.accessToken(['reports.read']).catch((e: unknown) => e)
    t.ok(isGatehouseError(err))
    t.match(err, {
      code: 'GATEHOUSE_ERR_CLIENT_TOKEN_UNAVAILABLE',
      statusCode: 503,
      message: errorCatalogue.GATEHOUSE_ERR_CLIENT_TOKEN_UNAVAILABLE.message,
    })
    t.match(
      (err as Error).cause,
      { code: 'GATEHOUSE_ERR_REFRESH_WAIT_TIMEOUT' },
      'the wait stays in the cause, for logs',
    )
    t.equal(fetched, 0, 'the waiter never fetched a token of its own')
  },
)
