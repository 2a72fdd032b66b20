/**
 * `ws`'s own readers of the two browser handshake headers its server
 * refuses only once the upstream's handshake is done: the
 * `Sec-WebSocket-Protocol` list and, where the route negotiates
 * permessage-deflate, the `Sec-WebSocket-Extensions` offer. The guard asks
 * them before the upstream is dialled, so what it lets through is by
 * construction what `ws` then takes. The package exports them (its index
 * and its ESM wrapper); @types/ws does not declare them, so they are typed
 * here.
 */
import * as ws from 'ws'

interface Readers {
  readonly extension: { parse(header: string): Record<string, unknown[] | undefined> }
  readonly subprotocol: { parse(header: string): Set<string> }
  readonly PerMessageDeflate: new (options: object) => { accept(offers: unknown[]): unknown }
}

const { extension, subprotocol, PerMessageDeflate } = ws as unknown as Readers

/**
 * permessage-deflate (RFC 7692) when a route asks for it, without context
 * takeover either way (§7.1.1): each message is compressed on its own, so
 * no socket keeps a zlib window alive between messages. The bridge's
 * servers negotiate it; the guard asks `ws` about an offer with it.
 */
export const DEFLATE = { serverNoContextTakeover: true, clientNoContextTakeover: true } as const

/** The browser's subprotocols in its order, or undefined where `ws`'s server would answer 400. */
export function offeredSubprotocols(header: string): readonly string[] | undefined {
  try {
    return [...subprotocol.parse(header)]
  } catch {
    return undefined
  }
}

/**
 * Whether `ws`'s server, negotiating `DEFLATE`, takes the browser's
 * extension offer, as its `completeUpgrade` reads it: a malformed list, or a
 * permessage-deflate offer it cannot accept (RFC 7692 §7: an unknown
 * parameter, one given twice, a window outside 8 to 15), it answers 400.
 */
export function deflateOfferTaken(header: string): boolean {
  try {
    const offers = extension.parse(header)['permessage-deflate']
    if (offers !== undefined) new PerMessageDeflate({ ...DEFLATE, isServer: true }).accept(offers)
    return true
  } catch {
    return false
  }
}
