/**
 * The gateway's reading of a browser's `Sec-WebSocket-Extensions` against
 * `ws`'s own, on generated headers: every offer the gateway lets through to
 * the upstream's dial must be one `ws` then takes, or the upstream is
 * dialled with the user's token for a handshake `ws` refuses (see
 * upgrade-ws-would-refuse-never-dials-the-upstream.test.ts). `ws`'s parser
 * is not exported; it is loaded from the package's files here only.
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import fc from 'fast-check'
import type { FastifyRequest } from 'fastify'
import t from 'tap'
import { acceptableDeflateOffer } from '../../../src/proxy/websocket/deflate-offer.js'
import { browserHandshake } from '../../../src/proxy/websocket/upgrade.js'

const require = createRequire(import.meta.url)
const lib = join(dirname(require.resolve('ws')), 'lib')
const extension = require(join(lib, 'extension.js')) as { parse(header: string): Record<string, unknown[]> }
type Deflate = new (options: object) => { accept(offers: unknown[]): unknown }
const PerMessageDeflate = require(join(lib, 'permessage-deflate.js')) as Deflate
const subprotocol = require(join(lib, 'subprotocol.js')) as { parse(header: string): Set<string> }

/** What `ws`'s server does with the offer on a route with `compression: true` (bridge.ts's DEFLATE). */
function wsTakes(header: string): boolean {
  try {
    const offers = extension.parse(header)
    const deflate = offers['permessage-deflate']
    if (deflate)
      new PerMessageDeflate({
        serverNoContextTakeover: true,
        clientNoContextTakeover: true,
        isServer: true,
      }).accept(deflate)
    return true
  } catch {
    return false
  }
}

/** Node hands a header's value over without the spaces and tabs around it. */
const asNodeReadsIt = (value: string) => value.replace(/^[ \t]+|[ \t]+$/g, '')

/** Separators with the whitespace around them a header may hold, and some it may not. */
const space = fc.constantFrom('', ' ', '\t', '  ', '\u00a0')
const name = fc.constantFrom('permessage-deflate', 'permessage-deflate', 'x-webkit-deflate-frame', 'foo', '')
const key = fc.constantFrom(
  'client_max_window_bits',
  'server_max_window_bits',
  'client_no_context_takeover',
  'server_no_context_takeover',
  'foo',
  '',
)
const value = fc.constantFrom(
  '',
  '',
  '=8',
  '=15',
  '=16',
  '=7',
  '="10"',
  '="1\\0"',
  '=""',
  '="9',
  '=0x9',
  '= 9',
  '=a b',
)
const parameter = fc
  .tuple(space, space, key, value)
  .map(([before, after, k, v]) => `${before};${after}${k}${v}`)
const offer = fc
  .tuple(name, fc.array(parameter, { maxLength: 4 }))
  .map(([n, parameters]) => n + parameters.join(''))
/** Offers as browsers make them, and near misses. */
const structured = fc
  .tuple(fc.array(offer, { minLength: 1, maxLength: 3 }), space, space)
  .map(([offers, before, after]) => offers.join(`${before},${after}`))
/** Offers a browser could make: the parameters RFC 7692 defines, with values it allows (or a parameter twice). */
const wellFormed = fc
  .array(
    fc.constantFrom(
      '; client_max_window_bits',
      ';client_max_window_bits=10',
      '; server_max_window_bits="12"',
      '\t; server_no_context_takeover',
      '; client_no_context_takeover',
    ),
    { minLength: 1, maxLength: 3 },
  )
  .map((parameters) => `permessage-deflate${parameters.join('')}`)
/** Any run of the grammar's pieces. */
const pieces = fc
  .array(
    fc.constantFrom(
      'permessage-deflate',
      'client_max_window_bits',
      'server_max_window_bits',
      '=',
      '=8',
      '"',
      '\\',
      ';',
      ',',
      ' ',
      '\t',
      '\u00a0',
    ),
    { minLength: 1, maxLength: 14 },
  )
  .map((parts) => parts.join(''))

t.test('every extension offer the gateway takes, ws takes too, and the other way round', async (t) => {
  const header = fc.oneof(structured, wellFormed, pieces).map(asNodeReadsIt)
  const taken = fc.sample(header, 2_000).filter(acceptableDeflateOffer)
  t.ok(
    taken.filter((value) => value.includes('permessage-deflate') && value.includes('=')).length > 50,
    'many offers taken have permessage-deflate with values: the property tests more than refusals',
  )
  fc.assert(
    fc.property(header, (value) => acceptableDeflateOffer(value) === wsTakes(value)),
    { numRuns: 20_000 },
  )
  for (const browser of [
    'permessage-deflate; client_max_window_bits',
    'permessage-deflate; client_max_window_bits=15; server_no_context_takeover, permessage-deflate',
    'x-webkit-deflate-frame',
  ])
    t.ok(acceptableDeflateOffer(browser), `${browser}: taken`)
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

t.test('every subprotocol list the gateway takes, ws takes too, and the other way round', async (t) => {
  const list = fc
    .array(fc.constantFrom('v1', 'v2', 'chat.example', ',', ' ', '\t', '\u00a0', '\u0085', '"', '/', ''), {
      minLength: 1,
      maxLength: 10,
    })
    .map((parts) => asNodeReadsIt(parts.join('')))
    .filter((value) => value.length > 0)
  const wsParses = (value: string) => {
    try {
      subprotocol.parse(value)
      return true
    } catch {
      return false
    }
  }
  fc.assert(
    fc.property(list, (value) => {
      const ours = browserHandshake(handshake({ 'sec-websocket-protocol': value }), false)
      return 'offered' in ours === wsParses(value)
    }),
    { numRuns: 20_000 },
  )
  t.same(browserHandshake(handshake({ 'sec-websocket-protocol': 'v2, v1' }), false), {
    offered: ['v2', 'v1'],
  })
  t.match(browserHandshake(handshake({ 'sec-websocket-protocol': 'v1\u00a0' }), false), {
    problem: /Protocol/,
  })
  // Only where the route compresses does ws read the offer at all.
  t.same(browserHandshake(handshake({ 'sec-websocket-extensions': 'nonsense;;' }), false), { offered: [] })
  t.match(browserHandshake(handshake({ 'sec-websocket-extensions': 'nonsense;;' }), true), {
    problem: /Extensions/,
  })
})
