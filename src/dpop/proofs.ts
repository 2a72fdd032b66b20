/**
 * DPoP proofs, always made by oauth4webapi (`oauth.DPoP`). Each proof
 * carries the nonce the target origin last sent (`DpopNonces`), put in
 * through oauth4webapi's `modifyAssertion`, so a nonce learnt by one
 * session serves all.
 */
import * as oauth from 'oauth4webapi'
import type { DpopKey } from '../types.js'
import { KeyCache, type KeyHolder } from './key-cache.js'
import { dpopKeyPair, publicKeyId } from './keys.js'
import { type DpopNonces, htuOrigin } from './nonces.js'

/**
 * Handles are kept ready (`KeyCache`: bounded, dropped unused or at the
 * session's end). A session read from Redis is a new object each time, so
 * handles are found by the key's public members: importing the key and
 * exporting its public JWK on every request would cost more than the
 * proof's one signature.
 */
export class DpopProofs implements KeyHolder {
  readonly #nonces: DpopNonces
  readonly #handles: KeyCache<Promise<oauth.DPoPHandle>>

  /** `now`: the clock a handle's idle time is measured by, epoch ms. */
  constructor(nonces: DpopNonces, now: () => number = Date.now) {
    this.#nonces = nonces
    this.#handles = new KeyCache(now)
  }

  get nonces(): DpopNonces {
    return this.#nonces
  }

  /** The oauth4webapi handle that signs `key`'s proofs. */
  handle(key: DpopKey): Promise<oauth.DPoPHandle> {
    const id = publicKeyId(key)
    let handle = this.#handles.use(id)
    if (!handle) {
      handle = dpopKeyPair(key).then((pair) =>
        oauth.DPoP({}, pair, {
          [oauth.modifyAssertion]: (header, payload) => {
            // oauth4webapi names an Ed25519 signature `Ed25519` (RFC 9864);
            // an IdP that lists only RFC 8037's `EdDSA` is asked in its name.
            if (key.alg === 'EdDSA') header.alg = 'EdDSA'
            // RFC 9449 §4.2: `nonce` is the latest the server provided, as
            // `DpopNonces` took it. oauth4webapi's handle keeps its own copy
            // of every answer's `DPoP-Nonce`, unchecked (two fields joined,
            // 4 KiB): that one never rides, or a single such answer would be
            // in every later proof of the session, which the IdP refuses.
            const nonce = this.#nonces.get(htuOrigin(String(payload.htu)))
            if (nonce === undefined) delete payload.nonce
            else payload.nonce = nonce
          },
        }),
      )
      this.#handles.set(id, handle)
      // A key that failed to import is tried again by the next request.
      handle.catch(() => this.#handles.forget(id))
    }
    return handle
  }

  forget(id: string): void {
    this.#handles.forget(id)
  }

  dropIdle(): void {
    this.#handles.dropIdle()
  }

  holds(id: string): boolean {
    return this.#handles.holds(id)
  }
}
