import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { addressNames } from '../../src/crypto/derived-keys.js'
import { buildGateway } from '../../src/server/gateway.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { SESSION_SECRET } from '../helpers/gateway.js'
import { jarFetch } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { dumpKeys } from '../helpers/redis-dump.js'
import { startStack } from '../helpers/stack.js'

t.test('login and callback are rate limited per client IP, with Retry-After', async (t) => {
  const stack = await startStack(t, { config: { rateLimitMax: 3 } })
  const url = `${stack.gateway.url}/auth/login`
  for (let i = 0; i < 3; i++) t.equal((await jarFetch(new CookieJar(), url)).status, 302)
  const limited = await jarFetch(new CookieJar(), url)
  t.equal(limited.status, 429)
  // A browser navigation: the catalogue's message as a page, not JSON.
  t.match(limited.headers.get('content-type'), /^text\/html/)
  t.match(limited.text, /Too many sign-in attempts from this address/)
  t.ok(Number(limited.headers.get('retry-after')) > 0, 'Retry-After is set')
  const callback = `${stack.gateway.url}/auth/callback?code=x&state=y`
  for (let i = 0; i < 3; i++) t.equal((await jarFetch(new CookieJar(), callback)).status, 400)
  t.equal((await jarFetch(new CookieJar(), callback)).status, 429, 'the callback has a budget too')
  t.equal(
    (await jarFetch(new CookieJar(), `${stack.gateway.url}/healthz`)).status,
    200,
    'other routes are not limited',
  )
})

t.test('with the Redis store the budget is shared by every instance', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const stack = await startStack(t, {
    config: { rateLimitMax: 4, store: redis.url, keyPrefix: redis.prefix },
  })
  // A second instance behind the same origin: it keeps the first's publicUrl, so its own port can be any.
  const second = await buildGateway({ ...stack.config, server: { ...stack.config.server, port: 0 } })
  t.teardown(() => second.close())
  await second.listen({ host: '127.0.0.1', port: 0 })
  await second.gatehouse.whenDiscovered()
  const urls = [stack.gateway.url, `http://127.0.0.1:${(second.server.address() as AddressInfo).port}`]
  for (let i = 0; i < 4; i++)
    t.equal((await jarFetch(new CookieJar(), `${urls[i % 2]}/auth/login`)).status, 302)
  t.equal((await jarFetch(new CookieJar(), `${urls[0]}/auth/login`)).status, 429)
  t.equal((await jarFetch(new CookieJar(), `${urls[1]}/auth/login`)).status, 429)
})

/** What the stacks here count an address under: their one secret's keyed hash of it. */
const named = addressNames([SESSION_SECRET])

/** A sign-in through a proxy that appends its peer's address, as nginx's `$proxy_add_x_forwarded_for` does. */
const viaProxy = (url: string, forwardedFor: string) =>
  jarFetch(new CookieJar(), url, { headers: { 'x-forwarded-for': forwardedFor } })

t.test(
  'behind a trusted proxy the budget is per address the proxy reports, not what the client claims',
  async (t) => {
    const stack = await startStack(t, { config: { rateLimitMax: 3, trustProxy: true } })
    const url = `${stack.gateway.url}/auth/login`
    // The client writes what it likes in front of the proxy's entry: a new "address" each time.
    for (let i = 0; i < 3; i++) t.equal((await viaProxy(url, `10.0.0.${i}, 198.51.100.7`)).status, 302)
    t.equal(
      (await viaProxy(url, '10.0.0.99, 198.51.100.7')).status,
      429,
      'rotating a claimed address does not help',
    )
    t.equal(
      (await viaProxy(url, '198.51.100.8')).status,
      302,
      'another client behind the proxy has its own budget',
    )
  },
)

t.test(
  'an entry that is not an address counts as the peer itself, and no key outgrows an address',
  async (t) => {
    const { url, counted } = await behindTrustedProxy(t)
    const claims = [`${'x'.repeat(4000)}`, `fe80::1%${'y'.repeat(4000)}`, '198.51.100.7:8080', 'unknown']
    const statuses = []
    for (const claim of claims) statuses.push((await viaProxy(url, claim)).status)
    t.same(
      statuses,
      [302, 302, 302, 429],
      "one budget, the socket peer's, for every entry that is no address",
    )
    const addresses = await counted()
    t.ok(addresses.length > 0, 'the counters are in Redis')
    t.same(addresses, [named('127.0.0.1')], "the socket peer's address, whatever the header said")
  },
)

t.test(
  'behind a trusted proxy an IPv6 client counts per /64, however it rotates its address within it',
  async (t) => {
    const { url, counted } = await behindTrustedProxy(t)
    // SLAAC privacy addresses (RFC 8981): a new interface id whenever the host likes, spelt as it likes.
    const rotated = [
      '2001:db8:a:b::1',
      '2001:DB8:A:B:3C1E:9F2A:77D0:1B44',
      '2001:0db8:000a:000b:ffff:0:0:7',
      '2001:db8:a:b:dead:beef::9',
    ]
    const statuses = []
    for (const address of rotated) statuses.push((await viaProxy(url, `203.0.113.5, ${address}`)).status)
    t.same(statuses, [302, 302, 302, 429], 'one budget for the whole /64')
    t.equal((await viaProxy(url, '2001:db8:a:c::1')).status, 302, 'the next /64 is another client')
    const prefixes = (await counted()).sort()
    t.same(
      prefixes,
      ['2001:db8:a:b::/64', '2001:db8:a:c::/64'].map(named).sort(),
      'one counter per /64, not per address',
    )
  },
)

/**
 * Data at rest is data in a backup: the counters in Redis (and so in its
 * dumps, its replicas and `MONITOR`) are named by a keyed hash of the
 * address, not the address. Until 2026-12-06 every sign-in's address was
 * there in clear, and the per-address budget never needed it to be.
 */
t.test('the counters in Redis name no client address, and still count per address', async (t) => {
  const { url, dump, counted } = await behindTrustedProxy(t)
  const statuses = []
  for (const address of [
    '198.51.100.77',
    '2001:db8:77:b::1',
    '198.51.100.77',
    '198.51.100.77',
    '198.51.100.77',
  ])
    statuses.push((await viaProxy(url, address)).status)
  t.same(statuses, [302, 302, 302, 302, 429], 'one budget per address, as before')
  const stored = [...(await dump())].flat().join('\n')
  t.equal((await counted()).length, 2, 'two counters in Redis')
  for (const address of ['198.51.100.77', '2001:db8:77:b', '198.51.100', '127.0.0.1'])
    t.notOk(stored.includes(address), `no key or value holds ${address}`)
})

t.test('an IPv4-mapped IPv6 address shares its IPv4 address budget', async (t) => {
  const stack = await startStack(t, { config: { rateLimitMax: 2, trustProxy: true } })
  const url = `${stack.gateway.url}/auth/login`
  t.equal((await viaProxy(url, '198.51.100.7')).status, 302)
  t.equal((await viaProxy(url, '::ffff:198.51.100.7')).status, 302)
  t.equal((await viaProxy(url, '::FFFF:c633:6407')).status, 429, 'three spellings of one IPv4 address')
})

/**
 * A gateway behind a trusted proxy, limited to 3 sign-ins, counting in a
 * Redis of its own; `counted` gives what each counter in it is keyed by.
 */
async function behindTrustedProxy(t: Test) {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const stack = await startStack(t, {
    config: { rateLimitMax: 3, trustProxy: true, store: redis.url, keyPrefix: redis.prefix },
  })
  const dump = async () =>
    new Map([...(await dumpKeys(redis.url, redis.prefix))].filter(([k]) => k.includes(':rl:')))
  const counted = async () =>
    // @fastify/rate-limit's key ends `<method><route>-<key>`; a counter's name holds no '-'.
    [...(await dump()).keys()].map((k) => k.slice(k.lastIndexOf('-') + 1))
  return { url: `${stack.gateway.url}/auth/login`, dump, counted }
}
