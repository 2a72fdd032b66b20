import type { Socket } from 'node:net'
import fc from 'fast-check'
import t from 'tap'
import { rateLimitKey } from '../../src/http/rate-limit-key.js'

/** The key of a request whose `request.ip` is `ip`, on a socket from `remoteAddress` (null: closed). */
const key = (ip: string, remoteAddress: string | null = '192.0.2.1') =>
  rateLimitKey({ ip, socket: { remoteAddress: remoteAddress ?? undefined } as Socket })

t.test('an IPv4 client counts per address', async (t) => {
  t.equal(key('198.51.100.7'), '198.51.100.7')
  t.not(key('198.51.100.7'), key('198.51.100.8'))
})

t.test('an IPv6 client counts per /64, whichever address of it it uses', async (t) => {
  const rotated = [
    '2001:db8:a:b::1',
    '2001:db8:a:b:ffff:1:2:3',
    // Privacy addresses (RFC 8981) and SLAAC: only the interface id changes.
    '2001:db8:a:b:3c1e:9f2a:77d0:1b44',
    '2001:db8:a:b::198.51.100.7',
  ]
  t.same(new Set(rotated.map((ip) => key(ip))), new Set(['2001:db8:a:b::/64']))
  t.equal(key('2001:db8:a:c::1'), '2001:db8:a:c::/64', 'the next /64 is another client')
})

t.test('two spellings of one prefix are one key', async (t) => {
  const spellings = [
    '2001:db8:0:0:1::1',
    '2001:0DB8:0000:0000:0001:0000:0000:0001',
    '2001:DB8::1:0:0:1',
    '2001:db8:0::1:0:0:1',
  ]
  t.same(new Set(spellings.map((ip) => key(ip))), new Set(['2001:db8::/64']))
  t.equal(key('::1'), '::/64')
})

t.test('an IPv4-mapped IPv6 address counts as its IPv4 address', async (t) => {
  // A dual-stack listener reports IPv4 peers so; a proxy may too.
  t.equal(key('::ffff:198.51.100.7'), '198.51.100.7')
  t.equal(key('::FFFF:c633:6407'), '198.51.100.7')
  t.equal(key('0:0:0:0:0:ffff:198.51.100.7'), '198.51.100.7')
})

t.test("an entry that is no address counts as the socket's peer, reduced the same way", async (t) => {
  for (const claim of ['unknown', '198.51.100.7:8080', '[2001:db8::1]', 'fe80::1%eth0', 'x'.repeat(4000), ''])
    t.equal(key(claim, '2001:db8:a:b::99'), '2001:db8:a:b::/64', claim.slice(0, 20))
  t.equal(key('unknown', '::ffff:127.0.0.1'), '127.0.0.1')
  // Node names the interface of a link-local peer; every link-local peer is in fe80::/64 anyway.
  t.equal(key('fe80::1%eth0', 'fe80::1%eth0'), 'fe80::/64')
  t.equal(key('unknown', null), 'unknown', 'a closed socket has no address')
})

/** Eight hextets, and three ways to write them. */
const hextets = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 })
const full = (parts: number[]) => parts.map((part) => part.toString(16)).join(':')
const padded = (parts: number[]) =>
  parts.map((part) => part.toString(16).padStart(4, '0').toUpperCase()).join(':')
// WHATWG URL serialises an IPv6 host compressed (RFC 5952): a parser that is not ours.
const compressed = (parts: number[]) => new URL(`http://[${full(parts)}]`).hostname.slice(1, -1)
const isMapped = (parts: number[]) => parts.slice(0, 5).every((part) => part === 0) && parts[5] === 0xffff

t.test('the key is canonical, bounded and exactly the first 64 bits', async (t) => {
  fc.assert(
    fc.property(hextets, (parts) => {
      fc.pre(!isMapped(parts))
      const k = key(full(parts))
      return k === key(padded(parts)) && k === key(compressed(parts)) && /^[0-9a-f:]{2,21}\/64$/.test(k)
    }),
  )
  fc.assert(
    fc.property(hextets, hextets, (a, b) => {
      fc.pre(!isMapped(a) && !isMapped(b))
      const samePrefix = a.slice(0, 4).every((part, i) => part === b[i])
      const rotated = [...a.slice(0, 4), ...b.slice(4)]
      return (key(full(a)) === key(full(b))) === samePrefix && key(full(rotated)) === key(full(a))
    }),
  )
  t.pass('held for every case')
})

t.test('any address spelling Node accepts gives a key no longer than a /64', async (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (ip) =>
      /^(?:[0-9a-f:]{2,21}\/64|\d{1,3}(?:\.\d{1,3}){3})$/.test(key(ip)),
    ),
  )
  t.pass('held for every case')
})
