import t from 'tap'
import { sessionStoreOnCluster } from '../helpers/cluster-session-store.js'
import { commandCalls, hgetOn } from '../helpers/redis-topology.js'
import { openTokens, ref, session } from '../session/fixtures.js'

// What is tested is where the write and its WAIT go, not how long a
// replica may take: a loaded machine can take longer than the 500 ms default.
const { cluster, sessions } = await sessionStoreOnCluster(t, { keyPrefix: 'd:', confirmTimeoutMs: 5_000 })

const next = (now: number) => ({ accessToken: 'A2', accessTokenExpiresAt: now + 120_000, refreshToken: 'R2' })

t.test(
  'on a cluster with replicas, a confirmed write waits for the replica of its key’s master',
  async (t) => {
    const { master, replicas } = await cluster.ownerOf('d:s:{c1}')
    t.equal(replicas.length, 1, 'its master has a replica')
    const before = await commandCalls(master.port, 'WAIT')
    await sessions.create(session('c1', Date.now()))
    t.ok((await commandCalls(master.port, 'WAIT')) > before, 'the master ran WAIT')
    t.equal(await hgetOn(replicas[0]!.port, 'd:s:{c1}', 'v'), '0', 'the replica holds the session')
  },
)

t.test(
  'after a failover with no write in flight, the next confirmed write goes to the promoted replica',
  async (t) => {
    const now = Date.now()
    await sessions.create(session('c2', now))
    const { master, replicas } = await cluster.ownerOf('d:s:{c2}')
    const replica = replicas[0]!
    await master.kill()
    await cluster.promoted(replica)

    t.equal(await sessions.updateTokens(ref('c2'), 0, next(now)), 'updated', 'the update is taken')
    t.equal(
      openTokens('c2', await hgetOn(replica.port, 'd:s:{c2}', 'tokens')).refreshToken,
      'R2',
      'by the promoted replica',
    )
    t.equal(await sessions.updateTokens(ref('c2'), 1, next(now)), 'updated', 'and so is the one after')
  },
)
