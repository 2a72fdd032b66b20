import * as oauth from 'oauth4webapi'
import { Agent, fetch as undiciFetch } from 'undici'
import type { TlsMaterial } from '../config/types.js'

type Fetch = (url: string, init: oauth.CustomFetchOptions<string, unknown>) => Promise<Response>

/**
 * The HTTP client for every call Gatehouse makes to the IdP. One undici
 * Agent, owned here and closed with the gateway, with a connect budget of
 * its own; each call also carries a total budget as an AbortSignal so a
 * slow IdP can never hold a request open for longer than `timeoutMs`.
 */
export interface IdpHttp {
  /** Options to spread into every oauth4webapi call. */
  options(): {
    [oauth.customFetch]: Fetch
    [oauth.allowInsecureRequests]: boolean
    signal: AbortSignal
  }
  close(): Promise<void>
}

export interface IdpHttpOptions {
  readonly timeoutMs: number
  readonly connectTimeoutMs: number
  /** RFC 8252-style loopback development issuers may use plain http. */
  readonly allowHttp: boolean
  /** Client certificate and private CA for mutual TLS (RFC 8705), from `oidc.tls`. */
  readonly tls?: TlsMaterial | undefined
}

export function createIdpHttp(opts: IdpHttpOptions): IdpHttp {
  const agent = new Agent({
    connect: {
      timeout: opts.connectTimeoutMs,
      // Node's TLS: `ca` replaces the system roots; `cert` and `key` are offered
      // when a server asks, i.e. at the IdP's mTLS endpoints (RFC 8705 §5).
      ...(opts.tls?.ca === undefined ? {} : { ca: opts.tls.ca }),
      ...(opts.tls?.cert === undefined ? {} : { cert: opts.tls.cert, key: opts.tls.key }),
    },
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    keepAliveTimeout: 10_000,
  })
  const customFetch: Fetch = (url, init) =>
    undiciFetch(url, { ...init, dispatcher: agent } as Parameters<
      typeof undiciFetch
    >[1]) as unknown as Promise<Response>

  return {
    options() {
      return {
        [oauth.customFetch]: customFetch,
        [oauth.allowInsecureRequests]: opts.allowHttp,
        signal: AbortSignal.timeout(opts.timeoutMs),
      }
    },
    close: () => agent.close(),
  }
}
