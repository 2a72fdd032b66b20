import * as oauth from 'oauth4webapi'
import { Agent, type Dispatcher, fetch as undiciFetch } from 'undici'
import type { TlsMaterial } from '../config/types.js'
import { connector, tlsConnectOptions } from '../tls/connect-options.js'
import { isOAuthErrorJson } from './oauth-error-body.js'

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
  /**
   * A request through the same connection, for what oauth4webapi does not
   * send: the JWKS that logout tokens are verified against (jose's
   * `customFetch`), and `check --online`'s POST to the end-session
   * endpoint. An IdP behind a private CA, or one that asks every caller
   * for the client certificate, serves these the same way.
   */
  readonly fetch: (url: string, init: RequestInit) => Promise<Response>
  /**
   * Options for a call whose answer must not be lost when the caller stops
   * waiting for it (late-answer.ts): the same connection settings, but an
   * answer is read for `lateAnswerMs` past `timeoutMs`, and `signal`
   * decides when to give up on it sooner.
   */
  patient(signal: AbortSignal): {
    [oauth.customFetch]: Fetch
    [oauth.allowInsecureRequests]: boolean
    signal: AbortSignal
  }
  close(): Promise<void>
}

export interface IdpHttpOptions {
  readonly timeoutMs: number
  /** How long past `timeoutMs` a patient call's answer is still read (`oidc.lateAnswerWait`). */
  readonly lateAnswerMs?: number
  readonly connectTimeoutMs: number
  /** RFC 8252-style loopback development issuers may use plain http. */
  readonly allowHttp: boolean
  /** Client certificate and private CA for mutual TLS (RFC 8705), from `oidc.tls`. */
  readonly tls?: TlsMaterial | undefined
  /**
   * Sends through this dispatcher, which the caller owns and closes, rather
   * than an Agent of our own: undici's MockAgent in tests, for answers a
   * real IdP cannot be made to give.
   */
  readonly dispatcher?: Dispatcher
}

/**
 * The most the gateway reads of one IdP answer, 1 MiB. oauth4webapi and
 * jose read an answer whole before they parse it, so without a bound an
 * IdP, or whatever answers in its place, could stream one until the
 * process runs out of memory within a single `oidc.timeout`. Token,
 * discovery and userinfo answers are a few KiB; a JWKS of a thousand RSA
 * keys is under 1 MiB.
 */
export const IDP_MAX_RESPONSE = 1024 * 1024

/**
 * `response` with its body bounded by IDP_MAX_RESPONSE as it decodes.
 * undici's `maxResponseSize` counts the bytes on the wire, and fetch
 * decodes a gzip, deflate or br answer whatever was asked for: 64 KiB of
 * gzip can unpack to 64 MiB. The error is the one undici gives past its own
 * bound, so an answer too large reads the same however it came.
 *
 * The reason phrase is not copied: it is free text, which undici reads as
 * UTF-8, and the Response constructor takes only bytes, so a localized
 * `200 Успешно` threw a TypeError in place of the IdP's answer (a refresh
 * it carried out then lost its rotated refresh token); no caller reads it
 * (RFC 9112 §4: "a client SHOULD ignore" it). A status past 599 is left
 * as it came: the Response constructor takes only 200 to 599, and its
 * RangeError stood in for an IdP's HTTP 600 (a server
 * error by its status, translate.ts) as an unreadable answer. No caller
 * reads such a body whole: oauth4webapi reads the endpoint's success status
 * or a 4xx, jose a 200, `check --online` a page's first byte.
 */
function decodedWithin(response: Response): Response {
  if (response.body === null || !response.headers.has('content-encoding')) return response
  if (response.status > 599) return response
  let read = 0
  const bounded = response.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        read += chunk.byteLength
        if (read <= IDP_MAX_RESPONSE) controller.enqueue(chunk)
        else
          controller.error(
            Object.assign(new Error('Response content exceeded max size'), {
              code: 'UND_ERR_RES_EXCEEDED_MAX_SIZE',
            }),
          )
      },
    }),
  )
  const { status, headers } = response
  // oauth4webapi and jose take any fetch Response (oauth4webapi compares by its tag).
  return new Response(bounded, { status, headers })
}

/**
 * A 4xx whose body is an OAuth error in JSON (RFC 6749 §5.2), made so that
 * oauth4webapi reads that error:
 *
 * - under another Content-Type (`text/html`, `text/plain`, none), relabelled
 *   `application/json`: oauth4webapi reads a 4xx's error only under that
 *   type, and the answer was read as a page that says nothing of the grant,
 *   so a refresh token the IdP refused kept its session on 503 until
 *   tokens.unavailableLimit;
 * - beside a bare challenge, without it (`bareChallenge`).
 *
 * A real page (a WAF's, a proxy's) is not JSON with an `error` and is left
 * as it came. Read from a clone, so a body that fails to arrive fails where
 * it did before.
 */
async function oauthErrorAsJson(response: Response): Promise<Response> {
  if (response.status < 400 || response.status > 499 || response.body === null) return response
  const type = response.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase()
  const challenge = response.headers.get('www-authenticate')
  const bare = challenge !== null && bareChallenge(challenge)
  if (type === 'application/json' && !bare) return response
  let text: string
  try {
    text = await response.clone().text()
  } catch {
    return response
  }
  if (!isOAuthErrorJson(text)) return response
  const headers = new Headers(response.headers)
  headers.set('content-type', 'application/json')
  if (bare) headers.delete('www-authenticate')
  void response.body.cancel().catch(() => {})
  // Without its reason phrase, as decodedWithin says.
  return new Response(text, { status: response.status, headers })
}

/**
 * Whether a `WWW-Authenticate` value names no error and no DPoP scheme:
 * `Basic realm="idp"`, which RFC 9110 §15.5.2 has every 401 carry. Beside
 * an OAuth error body it says nothing the body does not, but oauth4webapi
 * raises a challenge before it reads the body, and a 401 challenge that
 * names nothing is the client refused (translate.ts): an IdP's `401
 * invalid_grant` for one dead refresh token kept that session on 500 and
 * held back every session's refresh at the provider for 5 minutes
 * (RefusedClient). A challenge that names an error, or of the DPoP scheme
 * (RFC 9449 §7.1), says more and is kept; so is any value this reads
 * otherwise, a quoted `error=` or `DPoP` included.
 */
function bareChallenge(value: string): boolean {
  return !/(?:^|[\s,])error\s*=/i.test(value) && !/(?:^|,)\s*dpop(?:[\s,]|$)/i.test(value)
}

export function createIdpHttp(opts: IdpHttpOptions): IdpHttp {
  const agentFor = (timeoutMs: number): Dispatcher =>
    new Agent({
      connect: connector({
        timeout: opts.connectTimeoutMs,
        // The certificate is offered when a server asks: at the IdP's mTLS endpoints (RFC 8705 §5).
        ...tlsConnectOptions(opts.tls),
      }),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      // Enforced by undici's parser as the body arrives, so fetch's `.json()` too.
      maxResponseSize: IDP_MAX_RESPONSE,
      keepAliveTimeout: 10_000,
    })
  const agent = opts.dispatcher ?? agentFor(opts.timeoutMs)
  // Its own pool: undici's answer timeouts are the agent's, not a request's.
  const patientBudget = opts.timeoutMs + (opts.lateAnswerMs ?? 0)
  const patientAgent = opts.dispatcher ?? agentFor(patientBudget)
  const fetchThrough =
    (dispatcher: Dispatcher): Fetch =>
    async (url, init) =>
      oauthErrorAsJson(
        decodedWithin(
          (await undiciFetch(url, { ...init, dispatcher } as Parameters<
            typeof undiciFetch
          >[1])) as unknown as Response,
        ),
      )
  const customFetch = fetchThrough(agent)
  const patientFetch = fetchThrough(patientAgent)

  return {
    fetch: customFetch as IdpHttp['fetch'],
    options() {
      return {
        [oauth.customFetch]: customFetch,
        [oauth.allowInsecureRequests]: opts.allowHttp,
        signal: AbortSignal.timeout(opts.timeoutMs),
      }
    },
    patient(signal) {
      return {
        [oauth.customFetch]: patientFetch,
        [oauth.allowInsecureRequests]: opts.allowHttp,
        signal: AbortSignal.any([signal, AbortSignal.timeout(patientBudget)]),
      }
    },
    close: async () => {
      if (opts.dispatcher) return
      // A late answer still awaited is not given up: a reload retires this
      // client while the session's lock waits for that answer, and the new
      // client would otherwise present the spent refresh token. Nor waited
      // for: a shutdown exits when its apps have closed, dropping it then.
      patientAgent.close().catch(() => {})
      await agent.close()
    },
  }
}
