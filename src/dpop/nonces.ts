import { BoundedMap } from '../bounded-map.js'

/**
 * Most origins whose DPoP nonce is remembered: the IdP and each upstream
 * origin are few and come from the configuration, so this only bounds a
 * misbehaving peer.
 */
const MAX_ORIGINS = 256

/**
 * RFC 9449 §8.1: a nonce is NQCHAR, printable ASCII without space or
 * quotes. The RFC sets no length; servers send tens of characters. A
 * nonce goes into every later proof to its origin, so an upstream's
 * megabyte would ride in every request's headers: past 1 KiB it is not
 * taken.
 */
const USABLE_NONCE = /^[\x21\x23-\x5B\x5D-\x7E]{1,1024}$/

/** Whether a proof may carry `nonce`. */
export function usableNonce(nonce: string | string[] | null | undefined): nonce is string {
  return typeof nonce === 'string' && USABLE_NONCE.test(nonce)
}

/**
 * The latest `DPoP-Nonce` (RFC 9449 §8, §9) each server sent, per origin,
 * shared by every session of this process: a nonce is the server's, not
 * the key's, so a session's first proof can carry the nonce another
 * session was just given instead of costing a `use_dpop_nonce` round trip.
 */
export class DpopNonces {
  readonly #byOrigin = new BoundedMap<string, string>(MAX_ORIGINS)

  /** The nonce to put in a proof for `origin`, if its server has sent one. */
  get(origin: string): string | undefined {
    return this.#byOrigin.get(origin)
  }

  /** Remembers `nonce`, a `DPoP-Nonce` header's value, as `origin`'s latest. */
  remember(origin: string, nonce: string | null | undefined): void {
    if (usableNonce(nonce)) this.#byOrigin.set(origin, nonce)
  }
}

/** The origin of a proof's `htu`, which oauth4webapi writes as origin and path. */
export function htuOrigin(htu: string): string {
  const slash = htu.indexOf('/', htu.indexOf('//') + 2)
  return slash === -1 ? htu : htu.slice(0, slash)
}
