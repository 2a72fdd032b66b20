/** A time budget and the config key that sets it, so a timeout names what to change. */
export interface Budget {
  readonly ms: number
  readonly name: string
}

/** The budgets of one kind of call: its whole and its connect phase. */
export interface Budgets {
  readonly total?: Budget
  readonly connect?: Budget
}

/**
 * TLS verification failures that Node reports by OpenSSL's code
 * (`X509_V_ERR_*` without the prefix) rather than an `ERR_TLS_` one.
 */
const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH)/

interface Failure {
  readonly name?: unknown
  readonly code?: unknown
  readonly message?: unknown
  readonly cause?: unknown
  readonly errors?: unknown
  readonly address?: unknown
  readonly port?: unknown
  readonly hostname?: unknown
  readonly reason?: unknown
  readonly socket?: { readonly bytesRead?: unknown }
}

/**
 * Names why a network call failed in words an operator can act on:
 * `ECONNREFUSED 127.0.0.1:4000`, `ENOTFOUND idp.example`,
 * `TLS CERT_HAS_EXPIRED (certificate has expired)`, `timed out after
 * 10000 ms (oidc.timeout)`. fetch reports every one of them as "fetch
 * failed" and keeps the real error in `cause`; this walks down to it.
 * Undefined when `err` is not a network failure.
 */
export function networkCause(err: unknown, budgets: Budgets = {}): string | undefined {
  const failure = innermost(err)
  if (!failure) return undefined
  const code = typeof failure.code === 'string' ? failure.code : undefined
  const message = typeof failure.message === 'string' ? firstClause(failure.message) : ''
  if (isTimeoutFailure(failure)) {
    const what = code === 'UND_ERR_BODY_TIMEOUT' ? 'the answer stalled' : 'timed out'
    return budgets.total ? `${what} after ${budgets.total.ms} ms (${budgets.total.name})` : what
  }
  if (code === 'UND_ERR_CONNECT_TIMEOUT') {
    return budgets.connect
      ? `connect timed out after ${budgets.connect.ms} ms (${budgets.connect.name})`
      : 'connect timed out'
  }
  if (code === 'UND_ERR_SOCKET') return `connection closed by the peer (${message || code})`
  if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') {
    return `the answer was larger than the gateway reads; it stopped reading (${code})`
  }
  if (code && TLS_CODES.test(code)) {
    const reason = typeof failure.reason === 'string' ? failure.reason : message
    return `TLS ${code}${reason ? ` (${reason})` : ''}`
  }
  if (code && /^E[A-Z]+$/.test(code)) {
    if (typeof failure.hostname === 'string') return `${code} ${failure.hostname}`
    if (typeof failure.address === 'string') {
      return typeof failure.port === 'number'
        ? `${code} ${failure.address}:${failure.port}`
        : `${code} ${failure.address}`
    }
    return code
  }
  if (code) return message ? `${code}: ${message}` : code
  if (failure.name === 'AbortError') return 'aborted'
  // fetch refuses the ports of the Fetch standard's "bad port" list by message alone.
  if (message === 'bad port') return 'port blocked by fetch (a "bad port" of the Fetch standard)'
  return undefined
}

/**
 * Whether the peer closed the connection before a byte of an answer came
 * back (undici's `UND_ERR_SOCKET`, nothing read): what a TLS 1.3 server
 * that refuses the client certificate looks like from here, since its
 * alert comes after the client's side of the handshake (RFC 8446
 * §4.4.2.4); a crashing server looks the same.
 */
export function closedUnanswered(err: unknown): boolean {
  const failure = innermost(err)
  return failure?.code === 'UND_ERR_SOCKET' && failure.socket?.bytesRead === 0
}

/** The code of the deepest cause of a failed call (`ECONNRESET`, `ERR_SSL_…`), if it has one. */
export function failureCode(err: unknown): string | undefined {
  const code = innermost(err)?.code
  return typeof code === 'string' ? code : undefined
}

/** Whether `err` is a network call that ran out of time (total, connect, headers or body). */
export function isTimeout(err: unknown): boolean {
  const failure = innermost(err)
  return failure !== undefined && (isTimeoutFailure(failure) || failure.code === 'UND_ERR_CONNECT_TIMEOUT')
}

function isTimeoutFailure(failure: Failure): boolean {
  return (
    failure.name === 'TimeoutError' ||
    failure.code === 'UND_ERR_HEADERS_TIMEOUT' ||
    failure.code === 'UND_ERR_BODY_TIMEOUT'
  )
}

/** The deepest cause of a fetch failure, or the first of an AggregateError (Happy Eyeballs tries several addresses). */
function innermost(err: unknown): Failure | undefined {
  let current = err as Failure | undefined
  for (let depth = 0; depth < 8 && current && typeof current === 'object'; depth++) {
    if (Array.isArray(current.errors) && current.errors.length > 0 && current.code === undefined) {
      current = current.errors[0] as Failure
      continue
    }
    const next = current.cause as Failure | undefined
    if (!next || typeof next !== 'object') break
    current = next
  }
  if (!current || typeof current !== 'object') return undefined
  const isFetchWrapper = current.name === 'TypeError' && current.message === 'fetch failed'
  return isFetchWrapper ? undefined : current
}

/** Node appends advice after a semicolon ("…; if the root CA is installed locally, try …"). */
function firstClause(message: string): string {
  return message.split(';')[0]!.trim()
}
