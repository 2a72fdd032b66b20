import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { FastifyOtelInstrumentation } from '@fastify/otel'
import {
  type Attributes,
  context,
  diag,
  logs,
  metrics,
  propagation,
  TraceFlags,
  trace,
} from '@opentelemetry/api'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { UndiciInstrumentation, type UndiciRequest } from '@opentelemetry/instrumentation-undici'
import {
  defaultResource,
  envDetector,
  type ResourceDetector,
  resourceFromAttributes,
  serviceInstanceIdDetector,
} from '@opentelemetry/resources'
import { NodeSDK } from '@opentelemetry/sdk-node'
import type { FastifyBaseLogger, FastifyPluginCallback, FastifyRequest, onRequestHookHandler } from 'fastify'
import { SamplingFirst } from './decision.js'
import { reportDiagnostics } from './diagnostics.js'
import { samplerFromEnv } from './sampler.js'
import { endWhenAbandoned, nameByRoute, startUnroutedSpan, type UnroutedSpan } from './server-span.js'
import { useTracer } from './spans.js'

/**
 * The OpenTelemetry SDK, loaded only when `tracing.enabled` is true (this
 * module is imported dynamically), so a gateway with tracing off never
 * loads it.
 *
 * Neither instrumentation patches a module: @fastify/otel is a Fastify
 * plugin each gateway registers, and undici's publishes on diagnostics
 * channels, which are process-wide by name, so the undici we depend on
 * (the upstream pools in src/proxy, the IdP client's fetch) and Node's own
 * copy are both seen. Starting the SDK before the gateway is built is
 * therefore enough: no `--import` hook, whatever loaded first.
 *
 * Where, how and how much is the standard environment: the exporter's
 * endpoint, protocol and headers (OTEL_EXPORTER_OTLP_*), the sampler
 * (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG, read by sampler.ts and
 * asked first, see decision.ts), the service name (OTEL_SERVICE_NAME,
 * else a service.name in OTEL_RESOURCE_ATTRIBUTES, else `gatehouse`) and
 * the resource's other attributes (OTEL_RESOURCE_ATTRIBUTES, and
 * OTEL_NODE_RESOURCE_DETECTORS, else `DETECTORS`), read by the SDK itself.
 */
export interface Tracing {
  /**
   * Decides the request's sampling before the server span exists; added
   * immediately before `plugin`, whose hook reads the decision.
   */
  decide(trustIncoming: boolean): onRequestHookHandler
  /** Registers the server span per request; first of all plugins, so it covers every hook. */
  readonly plugin: FastifyPluginCallback
  /**
   * Ends the server span of a request whose connection closes before its
   * answer is complete, which `plugin` never ends; added immediately after it.
   */
  readonly endWhenAbandoned: onRequestHookHandler
  /** Starts the server span of a request answered before routing, which `plugin` never sees. */
  unrouted(trustIncoming: boolean): (request: FastifyRequest) => UnroutedSpan
  /** Flushes spans still buffered; the SDK stops with the last gateway using it. */
  shutdown(): Promise<void>
}

interface Running {
  readonly sdk: NodeSDK
  readonly fastify: FastifyOtelInstrumentation
  readonly undici: UndiciInstrumentation
  readonly decision: SamplingFirst
  readonly stopReporting: () => void
  users: number
}

/**
 * One SDK per process: its tracer provider, context manager and propagator
 * are process-wide globals. Several gateways in one process (tests) share it.
 */
let running: Running | undefined

const SERVICE_NAME = 'gatehouse'

/**
 * What describes this process on every span, unless
 * OTEL_NODE_RESOURCE_DETECTORS names the SDK's own detectors (the
 * operator's choice). The SDK's defaults would add the whole command line
 * (`process.command_args`, `process.command`), the executable's path, the
 * user the process runs as and the machine's id (`host.id`, from
 * /etc/machine-id, which machine-id(5) asks to keep confidential): a
 * command line can carry a secret, and none of them is ours to ship to a
 * tracing vendor. Kept: an id of this process (`service.instance.id`,
 * random), the host's name, the process id and the runtime. Last, so that
 * it wins, what OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME say (OTel
 * SDK environment spec).
 */
const DETECTORS: readonly ResourceDetector[] = [
  serviceInstanceIdDetector,
  { detect: () => ({ attributes: { 'host.name': hostname() } }) },
  {
    detect: () => ({
      attributes: {
        'process.pid': process.pid,
        'process.runtime.name': 'nodejs',
        'process.runtime.version': process.versions.node,
        'process.runtime.description': 'Node.js',
      },
    }),
  },
  envDetector,
]

/**
 * Longest value an attribute keeps, unless `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`
 * or `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` says otherwise: the SDK's own default
 * is no limit, and a client chooses the path and query an upstream call's
 * span records, up to `server.maxHeaderSize`. Envoy keeps 256 characters
 * of a path tag (`max_path_tag_length`); this keeps a path an operator reads.
 */
const ATTRIBUTE_VALUE_LENGTH = 1_024

/**
 * Starts the SDK, or joins the one this process already runs. `log` hears
 * OpenTelemetry's warnings and errors (diagnostics.ts), from the first
 * gateway that starts it.
 */
export function startTracing(log: FastifyBaseLogger, env: NodeJS.ProcessEnv = process.env): Tracing {
  if (!running) {
    const stopReporting = reportDiagnostics(log, env)
    // Reported once the SDK's constructor has installed its console logger,
    // when OTEL_LOG_LEVEL asks for it; else diagnostics.ts's is in place.
    const problems: string[] = []
    const decision = new SamplingFirst(samplerFromEnv(env, (problem) => problems.push(problem)))
    const fastify = new FastifyOtelInstrumentation({
      // One span per request: a span per hook would multiply a proxied
      // call's spans by ten and tell an operator nothing.
      instrumentHooks: false,
      instrumentHandler: false,
      // Error messages can quote what a peer said; the status and the span's
      // error.type carry what went wrong.
      recordExceptions: false,
      requestHook: nameByRoute,
      // Given the URL and method only; the decision for the request at hand
      // is handed over by the hook that made it (decision.ts).
      ignorePaths: decision.ignore,
    })
    const undici = new UndiciInstrumentation({
      startSpanHook: redactedCall,
      ignoreRequestHook: unsampledCall,
    })
    const sdk = withoutConsoleLogger(
      () =>
        new NodeSDK({
          // OTel SDK environment spec: OTEL_SERVICE_NAME names the service,
          // over OTEL_RESOURCE_ATTRIBUTES. The SDK reads it in its `env`
          // detector only, which OTEL_NODE_RESOURCE_DETECTORS may leave out;
          // given here, it is applied after every detector.
          ...(env.OTEL_SERVICE_NAME?.trim() ? { serviceName: env.OTEL_SERVICE_NAME.trim() } : {}),
          // Under whatever the detectors find: OTEL_RESOURCE_ATTRIBUTES may
          // name another service or version. Not the SDK's base, whose
          // service.name is `unknown_service:` and the executable
          // (process.argv0, often its path), which no detector replaces
          // when `env` is not among those OTEL_NODE_RESOURCE_DETECTORS names.
          resource: defaultResource().merge(
            resourceFromAttributes({ 'service.name': SERVICE_NAME, 'service.version': version() }),
          ),
          // The SDK reads OTEL_NODE_RESOURCE_DETECTORS only when given no detectors.
          ...(env.OTEL_NODE_RESOURCE_DETECTORS?.trim() ? {} : { resourceDetectors: [...DETECTORS] }),
          sampler: decision.sampler,
          idGenerator: decision.idGenerator,
          // Given here, the limits replace the SDK's reading of the variables.
          ...(env.OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT || env.OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT
            ? {}
            : { spanLimits: { attributeValueLengthLimit: ATTRIBUTE_VALUE_LENGTH } }),
          instrumentations: [fastify, undici],
          // W3C Trace Context only (traceparent, tracestate). Not baggage: what
          // a browser put there would travel on to every upstream.
          textMapPropagator: new W3CTraceContextPropagator(),
          // Traces only; Prometheus serves the metrics and stdout the logs.
          metricReaders: [],
          logRecordProcessors: [],
        }),
    )
    for (const problem of problems) diag.error(problem)
    sdk.start()
    running = { sdk, fastify, undici, decision, stopReporting, users: 0 }
    useTracer(trace.getTracer(SERVICE_NAME))
  }
  const current = running
  current.users++
  let stopped = false
  return {
    decide: (trustIncoming) => current.decision.hook(trustIncoming),
    plugin: current.fastify.plugin(),
    endWhenAbandoned,
    unrouted: (trustIncoming) => {
      const tracer = trace.getTracer(SERVICE_NAME)
      return (request) => startUnroutedSpan(tracer, trustIncoming, request)
    },
    async shutdown() {
      if (stopped) return
      stopped = true
      if (--current.users > 0) return
      running = undefined
      useTracer(undefined)
      // The SDK's shutdown leaves its instrumentations enabled; undici's
      // would stay subscribed to the process-wide diagnostics channels, and
      // the next SDK's would add a second traceparent to every call.
      current.fastify.disable()
      current.undici.disable()
      try {
        await current.sdk.shutdown()
      } finally {
        // The globals are set once per process unless disabled; a later
        // gateway in the same process starts a fresh SDK.
        trace.disable()
        context.disable()
        propagation.disable()
        // The SDK registers a logger and a meter provider too, though it
        // is given no processor or reader: left registered, they would
        // stay the shut-down ones for the next SDK, which then reports a
        // duplicate registration and a shut-down provider on every use.
        logs.disable()
        metrics.disable()
        current.stopReporting()
      }
    },
  }
}

/**
 * The SDK's constructor installs a console logger of its own when the
 * process's `OTEL_LOG_LEVEL` is set, and that logger prints what the SDK
 * quotes (an endpoint's credentials) as it is. So the constructor does not
 * see the variable; diagnostics.ts applies the level to the gateway's
 * redacting logger instead. Synchronous, so nothing else runs meanwhile.
 */
function withoutConsoleLogger<T>(make: () => T): T {
  const level = process.env.OTEL_LOG_LEVEL
  if (level === undefined) return make()
  delete process.env.OTEL_LOG_LEVEL
  try {
    return make()
  } finally {
    process.env.OTEL_LOG_LEVEL = level
  }
}

/** Gatehouse's version; package.json sits two levels up from both src/tracing and dist/tracing. */
function version(): string {
  const url = new URL('../../package.json', import.meta.url)
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version
}

/**
 * An outbound call inside a trace that is not sampled makes no client span:
 * the instrumentation would parse its URL and headers and build every
 * attribute for a span that is never recorded, on nine calls in ten at 10 %
 * sampling. The call still carries the trace's context, as W3C Trace
 * Context §3 asks, so the upstream knows the trace was not sampled and
 * joins that decision instead of starting traces of its own; it names the
 * active span as the parent, which is as unrecorded as the skipped one.
 */
function unsampledCall(request: UndiciRequest): boolean {
  const active = context.active()
  const parent = trace.getSpanContext(active)
  if (parent === undefined || (parent.traceFlags & TraceFlags.SAMPLED) !== 0) return false
  const carrier: Record<string, string> = {}
  propagation.inject(active, carrier)
  for (const name in carrier) request.addHeader(name, carrier[name]!)
  return true
}

/**
 * The undici instrumentation records the browser's User-Agent, which the
 * proxy passes on, as `user_agent.original`: the upstream's to record, not
 * ours. An attribute given as undefined is dropped by the SDK, silently.
 */
const NO_USER_AGENT: Attributes = Object.freeze({ 'user_agent.original': undefined })

/**
 * A proxied request's path parameters (a servlet's `;jsessionid=`) and query
 * are the browser's, and may carry identifiers or a credential someone put
 * in a URL; IdP calls put theirs in bodies. The keys stay, each value is
 * `REDACTED`, as the HTTP semantic conventions advise for sensitive query
 * values; a parameter with no `=` is taken as a value, whole.
 */
function redactedCall(request: UndiciRequest): Attributes {
  const q = request.path.indexOf('?')
  const rawPath = q === -1 ? request.path : request.path.slice(0, q)
  const hasParameters = rawPath.includes(';')
  if (q === -1 && !hasParameters) return NO_USER_AGENT
  const attributes: Attributes = { ...NO_USER_AGENT }
  const path = hasParameters ? withoutParameterValues(rawPath) : rawPath
  if (hasParameters) attributes['url.path'] = path
  const query = q === -1 ? '' : `?${redactValues(request.path.slice(q + 1), '&')}`
  if (q !== -1) attributes['url.query'] = query
  attributes['url.full'] = `${String(request.origin).replace(/\/$/, '')}${path}${query}`
  return attributes
}

/** Each segment's `;key=value` parameters (RFC 3986 §3.3) with their values redacted. */
function withoutParameterValues(path: string): string {
  return path
    .split('/')
    .map((segment) => {
      const semi = segment.indexOf(';')
      return semi === -1 ? segment : `${segment.slice(0, semi)};${redactValues(segment.slice(semi + 1), ';')}`
    })
    .join('/')
}

/** `key=value` pairs joined by `separator`, each value `REDACTED`. */
function redactValues(pairs: string, separator: string): string {
  return pairs
    .split(separator)
    .map((pair) => {
      const eq = pair.indexOf('=')
      // A parameter without `=` (`?<opaque token>`) is all value.
      if (eq === -1) return pair === '' ? pair : 'REDACTED'
      return `${pair.slice(0, eq)}=REDACTED`
    })
    .join(separator)
}
