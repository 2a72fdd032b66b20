import { queryObjects } from 'node:v8'
import { type Cluster, Redis } from 'ioredis'
import t from 'tap'
import { ClusterCoverage } from '../../src/redis/cluster-coverage.js'
import { REFUSED_PORT } from '../helpers/ports.js'
import { pollUntil } from '../helpers/within.js'

/**
 * The slot check keeps the last connection error of each master it asks,
 * to say why one does not answer. It kept them for every address it had
 * ever asked: in Kubernetes a master's pod comes back under a new IP, so
 * each restart, failover or reschedule left one more error behind, for
 * the life of the process. A real Cluster cannot be made to announce
 * hundreds of addresses in a test's time; the slot map is handed to the
 * check by a stand-in for the ioredis client (the only part it reads,
 * `CLUSTER SLOTS`), and each master it names is a real address, on
 * loopback, that refuses the connection.
 */

const ROUNDS = 200
const MASTERS = 3

/** `CLUSTER SLOTS` of three masters, each on its own address for `round`, as pods rescheduled. */
function slotsOf(round: number): unknown {
  const third = Math.ceil(16_384 / MASTERS)
  return Array.from({ length: MASTERS }, (_, m) => [
    m * third,
    Math.min(16_383, (m + 1) * third - 1),
    [`127.${m + 1}.${round >> 8}.${round & 255}`, REFUSED_PORT, `node-${m}`],
  ])
}

/** ms: how long a probe's socket, its connect refused, stays referenced by its connect timer. */
const CONNECT_TIMEOUT = 200

/** How many objects of `kind` are still referenced (a full collection first). */
const live = (kind: abstract new (...args: never[]) => unknown) =>
  queryObjects(kind as never, { format: 'count' }) as number

t.test(
  'the errors of masters gone from the slot map are not kept: an address change a check holds nothing more',
  async (t) => {
    let round = 0
    const client = {
      nodes: () => [],
      call: async () => slotsOf(round),
      options: { redisOptions: { connectTimeout: CONNECT_TIMEOUT } },
    } as unknown as Cluster
    const coverage = new ClusterCoverage(client)
    t.teardown(() => coverage.close())

    const first = await coverage.check()
    t.match(first, { count: 16_384, lost: [{ cause: /ECONNREFUSED/ }, {}, {}] }, 'every master lost, and why')
    const before = live(Error)
    const found: (number | undefined)[] = []
    for (round = 1; round <= ROUNDS; round++) found.push((await coverage.check())?.lost.length)
    t.ok(
      found.every((n) => n === MASTERS),
      'each check finds the masters at their new addresses lost',
    )
    // Each probe is held by its socket's connect timer until it fires: what
    // is held after that is held by the check.
    await pollUntil(async () => live(Redis) === 0, 10 * CONNECT_TIMEOUT + 5_000)
    const kept = live(Error) - before
    t.ok(
      kept < ROUNDS,
      `${kept} more errors held after ${ROUNDS} checks that each found ${MASTERS} masters at new addresses (${ROUNDS * MASTERS} addresses gone)`,
    )
  },
)
