import t from 'tap'
import { sessionStoreOnCluster } from '../helpers/cluster-session-store.js'
import { zscoreOn } from '../helpers/redis-topology.js'
import { indexName, session } from './fixtures.js'

// A session's record and its sub and sid index entries live in other slots,
// so on a Cluster usually on other masters. Only the record's write was
// confirmed (WAIT runs on the node it is sent to): an index entry its
// master had not passed on was lost when that master failed over, and a
// back-channel logout of the user then answered 200 {"ended":0} and left
// the session running.
const { cluster, sessions } = await sessionStoreOnCluster(t, { keyPrefix: 'ix:', confirmTimeoutMs: 500 })

const index = `ix:${indexName('sub', 'dora')}`
const { master, replicas } = await cluster.ownerOf(index)
const replica = replicas[0]!

/** A session id whose record's master is not the index's: only the index write meets the frozen replica. */
async function idAwayFrom(port: number, prefix: string): Promise<string> {
  for (let i = 0; ; i++) {
    const id = `${prefix}${i}`
    if ((await cluster.ownerOf(`ix:s:{${id}}`)).master.port !== port) return id
  }
}

t.test(
  'a sign-in whose index entry no replica of its own master confirms is refused, never a session a logout cannot find',
  async (t) => {
    t.equal(replicas.length, 1, 'the index master has a replica')
    const now = Date.now()
    const refused = await idAwayFrom(master.port, 'away')
    replica.freeze()
    t.teardown(() => replica.thaw())
    await t.rejects(
      sessions.create(session(refused, now, { sub: 'dora' })),
      { code: 'GATEHOUSE_ERR_STORE_UNAVAILABLE', statusCode: 503 },
      'the sign-in answers 503: its index entry could be lost in a failover',
    )
    replica.thaw()

    const kept = await idAwayFrom(master.port, 'kept')
    await sessions.create(session(kept, now, { sub: 'dora' }))
    t.not(
      await zscoreOn(replica.port, index, kept),
      null,
      'once the replica hears again, the index entry is on it by the time the sign-in is answered',
    )
    t.same(await sessions.idsBySub('dora'), [kept], 'and a logout by sub finds the session')
  },
)
