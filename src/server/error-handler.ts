import type { IncomingMessage } from 'node:http'
import type {
  FastifyContextConfig,
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
} from 'fastify'
import fp from 'fastify-plugin'
import {
  causeName,
  type ErrorCode,
  errorCatalogue,
  gatehouseError,
  isGatehouseError,
  noteAnswer,
  retryAfterFor,
  wasLogged,
} from '../errors.js'
import { escapeHtml, PAGE_CSP } from '../http/pages.js'
import { failureFields, type IdpFailure, idpFailureOf, printable } from '../oidc/translate.js'
import { RepeatedLines, repeatedField } from '../repeated-lines.js'
import { framingRefusal } from './request-framing.js'
import { servedMethods } from './wrong-method.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * What kind of answer the route gives. `page`: a browser navigation,
     * whose errors are an HTML page; `json`: an API of the gateway's own,
     * whose errors are `{ error, message }`. Both are the gateway's own
     * answers, never cached or sniffed. Absent on proxy routes: their
     * answers are the upstream's, only their errors are ours (JSON).
     */
    readonly renders?: 'page' | 'json'
    /** The log line of a refusal on this route, e.g. `login refused`; without it 4xx go unlogged. */
    readonly refusal?: string
  }
  interface FastifyRequest {
    /** Where an error page's "Sign in again" link comes back to; null: `/`. */
    returnTo: string | null
  }
}

export interface ErrorAnswersOptions {
  /** The login endpoint an error page links to, `{auth.basePath}/login`. */
  readonly signIn: string
  /** Where that link comes back to when the request set no `returnTo`; default `/`. */
  readonly home?: string
}

export interface ErrorAnswersRootOptions extends ErrorAnswersOptions {
  /** With `frontends:`, the frontend a request is for (frontend-select.ts), which picks the routes it may be told of. */
  readonly frontendOf?: ((req: IncomingMessage) => string) | undefined
}

/**
 * Refusals a client can repeat at will and whose line says nothing new:
 * past the sign-in rate limit, each further attempt would write the same
 * `login refused` line, so the limit would bound the IdP's load but not the log's.
 */
const REPEATED_REFUSALS: ReadonlySet<ErrorCode> = new Set(['GATEHOUSE_ERR_RATE_LIMITED'])

/**
 * A frontend's own error pages (`frontends[]`): in its scope, the same
 * answers as `errorAnswers`, with a "Sign in again" link to its own
 * sign-in endpoint that comes back inside it.
 */
export function frontendErrorAnswers(scope: FastifyInstance, opts: ErrorAnswersOptions): void {
  const repeated = new RepeatedLines()
  scope.setErrorHandler(function handle(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
    return answerError(err, request, reply, opts, repeated)
  })
}

/**
 * The one way out for errors. Every route throws catalogue errors; this
 * renders them, as an HTML page on a `renders: 'page'` route and as
 * `{ error, message }` JSON everywhere else, with the catalogue's status
 * and the error's `Retry-After` (its own, else the catalogue's). Nothing
 * else about an error, least of all a stack, reaches the client. It also
 * marks every answer the gateway makes itself.
 */
export const errorAnswers = fp(
  async function errorAnswers(app: FastifyInstance, opts: ErrorAnswersRootOptions) {
    app.decorateRequest('returnTo', null)
    const repeated = new RepeatedLines()
    app.setErrorHandler(function handle(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
      return answerError(err, request, reply, opts, repeated)
    })
    app.setNotFoundHandler(function notFound(request, reply) {
      // RFC 9110 §15.5.6: a route of ours under another method is not missing.
      const allow = servedMethods(request, opts.frontendOf)
      if (allow !== undefined) reply.header('allow', allow)
      const code = allow === undefined ? 'GATEHOUSE_ERR_NOT_FOUND' : 'GATEHOUSE_ERR_METHOD_NOT_ALLOWED'
      return answerError(gatehouseError(code) as FastifyError, request, reply, opts)
    })
    app.addHook('onSend', (request, reply, payload, done) => {
      if (routeConfig(request).renders !== undefined) ownAnswer(reply)
      done(null, payload)
    })
  },
  { name: 'gatehouse-errors', fastify: '5.x' },
)

/**
 * The cause an outage's once-a-minute line is kept by: for an IdP's
 * answer, the provider, the call and what the gateway made of it
 * (`server_error`, `retry_later`, `timeout`, …), a bounded set. The
 * provider, as each one's outage is its own: with one key for all, corp
 * failing in the minute partner did was counted as more of partner's,
 * and never logged. Not the IdP's own words:
 * its `error_description` may differ in every answer (a trace id, a
 * timestamp: Entra ID writes both), and so may its `error` code and, for a
 * 5xx, its status, which a hostile or broken IdP picks per answer; each
 * would key a line per request, and the keys are at most KEYS_MAX
 * (repeated-lines.ts). The line written still carries what it said.
 */
function outageKey(cause: string | undefined, failure: IdpFailure | undefined): string | undefined {
  return failure === undefined ? cause : `${failure.idp ?? ''} ${failure.operation} ${failure.answer}`
}

/** A request the router refused (`frameworkErrors`) has no route, so no route config. */
function routeConfig(request: FastifyRequest): Pick<FastifyContextConfig, 'renders' | 'refusal'> {
  return request.routeOptions.config ?? {}
}

/** Gateway-made answers are never cached and never sniffed; proxied ones are the upstream's business. */
function ownAnswer(reply: FastifyReply): void {
  reply.header('cache-control', 'no-store').header('x-content-type-options', 'nosniff')
}

/**
 * A catalogue error as a listener without Fastify (the metrics one)
 * answers it: the status, headers and JSON body `answerError` gives.
 */
export function plainErrorAnswer(
  code: ErrorCode,
  headers: Readonly<Record<string, string>> = {},
): { status: number; headers: Record<string, string>; body: string } {
  const { status, error, message } = errorCatalogue[code]
  return {
    status,
    headers: {
      ...headers,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'content-type': 'application/json; charset=utf-8',
    },
    body: JSON.stringify({ error, message }),
  }
}

function answerError(
  err: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
  signIn: ErrorAnswersOptions,
  repeated?: RepeatedLines,
): FastifyReply {
  ownAnswer(reply)
  const route = routeConfig(request)
  const known = isGatehouseError(err)
  if (!known && (err.statusCode ?? 500) < 500) {
    // Fastify's own 4xx (a bad body, a too-large payload): its message is
    // about the request, not our internals.
    return render(request, reply, signIn, err.statusCode!, 'bad_request', err.message, 'Sign-in failed')
  }
  const code: ErrorCode = known ? err.code : 'GATEHOUSE_ERR_INTERNAL'
  const spec = errorCatalogue[code]
  // The access line and the server span say which of the catalogue's
  // answers this was (observability.ts, tracing/server-span.ts).
  noteAnswer(request.raw, code)
  // A page tells the person the failure was logged, so on a route with a
  // `refusal` line it is, 4xx included; elsewhere only what an operator acts on.
  // What the IdP answered, when that is the cause: the page says it, so must the log.
  const failure = known ? idpFailureOf(err) : undefined
  const said = failure ? { operation: failure.operation, ...failureFields(failure) } : {}
  if (!known) request.log.error({ err }, route.refusal ?? 'unhandled error')
  else if (code === 'GATEHOUSE_ERR_INTERNAL' && route.refusal)
    request.log.error({ err: err.cause }, route.refusal)
  // 501 is the client's: a request the gateway does not implement, not an outage.
  else if (spec.status >= 500 && spec.status !== 501) {
    // An outage answers every request alike (the store down, the IdP
    // waited out): one line a minute per code and cause tells it, and
    // the next says how many requests it answered so. A bug is every time.
    const cause = causeName(err)
    const held = wasLogged(err)
      ? undefined
      : !repeated || code === 'GATEHOUSE_ERR_INTERNAL'
        ? 0
        : repeated.admit(`${code} ${outageKey(cause, failure)}`)
    if (held !== undefined)
      request.log.warn({ code, cause, ...said, ...repeatedField(held) }, route.refusal ?? spec.error)
  } else if (route.refusal && REPEATED_REFUSALS.has(code)) {
    const held = repeated ? repeated.admit(`${route.refusal} ${code}`) : 0
    if (held !== undefined) request.log.info({ code, ...repeatedField(held) }, route.refusal)
  } else if (route.refusal)
    // The page says why; so must the line. Without a back-channel answer
    // to quote, its words are the page's: the error an IdP sent the
    // browser back with (RFC 6749 §4.1.2.1), which the line left out.
    // Bounded: a refused sign-in parameter is quoted in it.
    request.log.info({ code, ...(failure ? said : { reason: printable(err.message, 500) }) }, route.refusal)
  // A session the IdP ended is logged where its answer came (refresh-log.ts);
  // one that ends for the gateway's own reasons (no refresh token, the
  // record gone meanwhile) is logged here, once, as its cookie is cleared.
  else if (code === 'GATEHOUSE_ERR_SESSION_EXPIRED' && failure === undefined && !(err.cause instanceof Error))
    request.log.info({ code, session: err.session }, `session ended: ${err.message}`)
  // Not one that something else ended while this request used it: a
  // sign-in over it may have set the browser a new cookie meanwhile, and
  // clearing the name would sign that session out (`endedElsewhere`).
  if (code === 'GATEHOUSE_ERR_SESSION_EXPIRED' && !(known && err.endedElsewhere)) request.session.delete()
  // The error's own wait where it has one: the IdP's, bounded, or what is left of the gateway's.
  const retryAfter = known ? retryAfterFor(err) : undefined
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter))
  const message = known ? err.message : spec.message
  const title =
    code === 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED'
      ? 'Sign-in is misconfigured'
      : spec.status === 503
        ? 'Sign-in is unavailable right now'
        : 'Sign-in failed'
  return render(request, reply, signIn, spec.status, spec.error, message, title)
}

function render(
  request: FastifyRequest,
  reply: FastifyReply,
  signIn: ErrorAnswersOptions,
  status: number,
  error: string,
  message: string,
  title: string,
): FastifyReply {
  reply.code(status)
  if (routeConfig(request).renders !== 'page') return reply.send({ error, message })
  const again = `${signIn.signIn}?returnTo=${encodeURIComponent(request.returnTo ?? signIn.home ?? '/')}`
  return reply
    .header('content-type', 'text/html; charset=utf-8')
    .header('content-security-policy', PAGE_CSP)
    .send(errorPage(title, message, again))
}

/**
 * The page a person sees when a sign-in or sign-out step fails: what went
 * wrong, in words, and a way to start again. Every interpolated value is escaped.
 */
function errorPage(title: string, message: string, loginUrl: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1f2933}
h1{font-size:1.4rem}a{color:#0b5cad}</style></head>
<body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>
<p><a href="${escapeHtml(loginUrl)}">Sign in again</a></p></body></html>
`
}

/**
 * Fastify's `frameworkErrors`: what its router refuses before any route or
 * hook runs, answered from the catalogue (`ROUTER_REFUSALS`); Fastify's own
 * body would echo the path back. Anything else is answered like any error.
 */
export function frameworkError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  // No hook runs for this request: the observers count, log and trace it
  // as the hooks would (observability.ts).
  request.server.observers.unrouted(request, reply, () => {
    // Called directly: the request Fastify builds here carries the error
    // handler it had before setErrorHandler ran, so reply.send(err) would
    // answer with Fastify's default body.
    // A refusal before the hooks closes a faulty-framed connection as the
    // framing hook would (request-framing.ts): kept open, the bytes after
    // the chunked body's end would be read as the next request.
    const framing = framingRefusal(request, reply) as FastifyError | undefined
    const refusal = ROUTER_REFUSALS[err.code]
    answerError(framing ?? (refusal ? (gatehouseError(refusal) as FastifyError) : err), request, reply, {
      signIn: '/',
    })
  })
}

/**
 * What the router's refusals are in the catalogue's words; Fastify's own
 * messages quote the path. A path that does not percent-decode (`%zz`) is
 * one an upstream could read differently. A path parameter longer than
 * Fastify's `maxParamLength` (100 characters) names nothing a route
 * serves: the one route with a parameter takes a provider's name, at
 * most 32 characters.
 */
const ROUTER_REFUSALS: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_BAD_URL: 'GATEHOUSE_ERR_INVALID_PATH',
  FST_ERR_MAX_PARAM_LENGTH: 'GATEHOUSE_ERR_NOT_FOUND',
}
