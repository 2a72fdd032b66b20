/**
 * The upgrade guard reads a browser's subprotocols and extension offer
 * with `ws`'s own readers, so it refuses, before the upstream is dialled,
 * exactly what `ws`'s server would refuse once the upstream's handshake is
 * done (upgrade-ws-would-refuse-never-dials-the-upstream.test.ts has the
 * gateway do it).
 */
import type { FastifyRequest } from 'fastify'
import t from 'tap'
import { browserHandshake } from '../../../src/proxy/websocket/upgrade.js'
import { deflateOfferTaken, offeredSubprotocols } from '../../../src/proxy/websocket/ws-readers.js'

t.test('a permessage-deflate offer is taken as ws takes it', async (t) => {
  for (const browser of [
    'permessage-deflate; client_max_window_bits',
    'permessage-deflate; client_max_window_bits=15; server_no_context_takeover, permessage-deflate',
    'permessage-deflate; server_max_window_bits="12"',
    'x-webkit-deflate-frame',
    'foo; bar=1',
  ])
    t.ok(deflateOfferTaken(browser), `${browser}: taken`)
  for (const refused of [
    'permessage-deflate; client_max_window_bits=99',
    'permessage-deflate; server_max_window_bits',
    'permessage-deflate; client_max_window_bits=10; client_max_window_bits=10',
    'permessage-deflate; foo',
    'permessage-deflate;;',
    'permessage-deflate; client_max_window_bits = 10',
    'permessage-deflate\u00a0; client_no_context_takeover',
    ',',
  ])
    t.notOk(deflateOfferTaken(refused), `${refused}: refused`)
})

t.test('a subprotocol list is read in the browser’s order, refused where ws refuses it', async (t) => {
  t.same(offeredSubprotocols('v2, v1'), ['v2', 'v1'])
  t.same(offeredSubprotocols('chat.example\t,v1'), ['chat.example', 'v1'])
  for (const refused of ['v1\u00a0', 'v1, v1', 'v1,,v2', 'v1 v2', '"v1"', 'v1,'])
    t.equal(offeredSubprotocols(refused), undefined, `${JSON.stringify(refused)}: refused`)
})

/** A handshake as Node hands it over, with `headers` beside a valid key and version. */
const handshake = (headers: Record<string, string>) =>
  ({
    method: 'GET',
    raw: { httpVersionMajor: 1, httpVersionMinor: 1 },
    headers: {
      upgrade: 'websocket',
      'sec-websocket-key': Buffer.from('0123456789abcdef').toString('base64'),
      'sec-websocket-version': '13',
      ...headers,
    },
  }) as unknown as FastifyRequest

t.test('the guard asks the readers, and reads an offer only where the route compresses', async (t) => {
  t.same(browserHandshake(handshake({ 'sec-websocket-protocol': 'v2, v1' }), false), {
    offered: ['v2', 'v1'],
  })
  t.match(browserHandshake(handshake({ 'sec-websocket-protocol': 'v1\u00a0' }), false), {
    problem: /Protocol/,
  })
  t.same(browserHandshake(handshake({ 'sec-websocket-extensions': 'nonsense;;' }), false), { offered: [] })
  t.match(browserHandshake(handshake({ 'sec-websocket-extensions': 'nonsense;;' }), true), {
    problem: /Extensions/,
  })
  t.same(browserHandshake(handshake({ 'sec-websocket-extensions': 'permessage-deflate' }), true), {
    offered: [],
  })
})
