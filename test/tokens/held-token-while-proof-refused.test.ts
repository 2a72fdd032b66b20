import t from 'tap'
import { gatehouseError } from '../../src/errors.js'
import { MemorySessionStore } from '../../src/session/memory-store.js'
import { MemoryLockService } from '../../src/tokens/memory-lock.js'
import { UserTokens } from '../../src/tokens/user-tokens.js'
import { session } from '../session/fixtures.js'

/**
 * A refresh the IdP refused for its DPoP proof (RFC 9449 §5, §8) spent
 * nothing of the session's, as an outage does not. Where an outage lets a
 * still-valid token serve meanwhile, the refused proof answered 503 though
 * the session held a token good for seconds more.
 */
t.test('a still-valid token serves while the IdP refuses the proof, as during an outage', async (t) => {
  const now = Date.now()
  const store = new MemorySessionStore({ idleTimeoutMs: 60_000 })
  // Due (within refreshBefore), still valid.
  const record = session('s1', now, {
    tokens: { accessToken: 'A1', accessTokenExpiresAt: now + 3_000, refreshToken: 'R1' },
  })
  await store.create(record)
  let asked = 0
  const tokens = new UserTokens({
    store,
    locks: new MemoryLockService(),
    oidc: {
      refresh: () => {
        asked++
        return Promise.reject(gatehouseError('GATEHOUSE_ERR_DPOP_PROOF_REFUSED'))
      },
    },
    refreshBefore: 5_000,
    refreshWait: 1_000,
    lockTtl: 1_000,
    now: () => now,
  })
  t.equal(await tokens.accessToken(record), 'A1', 'the held token serves')
  t.equal(asked, 1, 'the IdP was asked once')
  t.ok(await store.get(record, now), 'the session stays')
})
