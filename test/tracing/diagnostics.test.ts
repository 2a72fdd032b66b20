import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { context, diag, TraceFlags, trace } from '@opentelemetry/api'
import { globalErrorHandler } from '@opentelemetry/core'
import Fastify from 'fastify'
import t from 'tap'
import type { GatehouseConfig } from '../../src/config/types.js'
import { loggerOptions } from '../../src/server/logger.js'
import { reportDiagnostics } from '../../src/tracing/diagnostics.js'
import { startTracing } from '../../src/tracing/sdk.js'
import { until } from '../helpers/websocket.js'

/**
 * What OpenTelemetry reports reaches the gateway's log: the SDK installs a
 * logger only with OTEL_LOG_LEVEL, so a sampler setting it replaced used to
 * change the sampling in silence.
 */

/** The gateway's own logger (its serializers, redaction and trace ids), writing JSON lines to an array. */
function capturingLog(level = 'info') {
  const lines: { level: number; msg: string; err?: unknown; trace_id?: string; span_id?: string }[] = []
  const config = { logging: { level }, tracing: { enabled: true } } as GatehouseConfig
  const app = Fastify({
    logger: { ...loggerOptions(config), stream: { write: (line: string) => lines.push(JSON.parse(line)) } },
  })
  return { log: app.log, lines }
}

/** The SDK's exporter would send to this unless told otherwise; nothing is exported here. */
const QUIET = { OTEL_TRACES_EXPORTER: 'none' }

t.test('an unknown sampler and a ratio out of range are reported in the log, as errors', async (t) => {
  for (const [env, report] of [
    [
      { OTEL_TRACES_SAMPLER: 'jaeger_remote' },
      /unknown OTEL_TRACES_SAMPLER value "jaeger_remote", using parentbased_always_on/,
    ],
    [
      { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '5' },
      /OTEL_TRACES_SAMPLER_ARG=5 is not a ratio in \[0, 1\], using 1/,
    ],
  ] as const) {
    const { log, lines } = capturingLog()
    const tracing = startTracing(log, { ...QUIET, ...env })
    await tracing.shutdown()
    const reported = lines.filter((l) => report.test(l.msg))
    t.equal(reported.length, 1, `${JSON.stringify(env)}: reported once`)
    t.equal(reported[0]?.level, 50, 'at level error')
    t.match(reported[0]?.msg, /^OpenTelemetry: /, 'and says whose report it is')
  }
})

t.test('a good setting reports nothing', async (t) => {
  const good = capturingLog()
  await startTracing(good.log, {
    ...QUIET,
    OTEL_TRACES_SAMPLER: 'traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.1',
  }).shutdown()
  t.same(good.lines, [], 'nothing in the log')
})

t.test(
  "OTEL_LOG_LEVEL chooses what reaches the gateway's log, redacted; nothing goes to the console",
  async (t) => {
    const endpoint = 'http://user:SEKRET@collector host:4318'
    const env = { OTEL_LOG_LEVEL: 'debug', OTEL_EXPORTER_OTLP_ENDPOINT: endpoint }
    // The SDK reads both from the process's environment itself.
    Object.assign(process.env, env)
    const { log, lines } = capturingLog('debug')
    // The SDK's console logger would hold the console's methods from before
    // any test could replace them; what they write reaches the streams.
    const console: string[] = []
    const stderr = process.stderr.write
    const stdout = process.stdout.write
    const capture = ((chunk: string | Uint8Array) => console.push(String(chunk)) > 0) as typeof stderr
    process.stderr.write = capture
    process.stdout.write = capture
    try {
      await startTracing(log, { ...env, OTEL_TRACES_SAMPLER: 'bogus' }).shutdown()
    } finally {
      process.stderr.write = stderr
      process.stdout.write = stdout
      for (const name of Object.keys(env)) delete process.env[name]
    }
    t.same(console, [], 'nothing on the console')
    const reported = (pattern: RegExp) => lines.filter((l) => pattern.test(l.msg))
    t.match(reported(/unknown OTEL_TRACES_SAMPLER value "bogus"/), [{ level: 50 }], 'errors, as before')
    t.match(reported(/Could not parse environment-provided export URL/), [{ level: 40 }], 'warnings')
    t.ok(
      lines.some((l) => l.level === 20 && l.msg.startsWith('OpenTelemetry: ')),
      "and, as asked, the SDK's debug messages, at debug",
    )
    t.notMatch(JSON.stringify(lines), /SEKRET/, 'none with the credential')
    t.equal(process.env.OTEL_LOG_LEVEL, undefined, 'the environment is left as it was')
  },
)

t.test('an unknown OTEL_LOG_LEVEL is reported, and info is used, as the SDK would', async (t) => {
  const { log, lines } = capturingLog()
  const stop = reportDiagnostics(log, { OTEL_LOG_LEVEL: 'loud' })
  try {
    diag.info('an info message')
    diag.warn('a warning')
  } finally {
    stop()
  }
  t.match(lines, [
    { level: 40, msg: /Unknown log level "loud"/ },
    { level: 30, msg: /an info message/ },
    { level: 40, msg: /a warning/ },
  ])
})

t.test(
  "an export the collector refuses is logged by its error's name and code, never with what the collector sent",
  async (t) => {
    // A collector that refuses, quoting the request's credentials back.
    const collector = createServer((req, res) => {
      req.resume()
      res
        .writeHead(400, { 'content-type': 'text/plain' })
        .end(`PEER-SAID-THIS you sent ${req.headers.authorization}`)
    })
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve))
    t.teardown(() => collector.close())
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer otlp-SEKRET-value',
      OTEL_TRACES_SAMPLER: 'always_on',
      // Exported while running, as in production, not by the flush at shutdown.
      OTEL_BSP_SCHEDULE_DELAY: '10',
    }
    // The exporter reads the process's environment itself.
    Object.assign(process.env, env)
    t.teardown(() => {
      for (const name of Object.keys(env)) delete process.env[name]
    })
    const { log, lines } = capturingLog()
    const tracing = startTracing(log, env)
    trace.getTracer('test').startSpan('one').end()
    const reported = () => lines.filter((l) => /^OpenTelemetry: /.test(l.msg))
    t.ok(await until(() => reported().length > 0), 'the failed export is reported')
    await tracing.shutdown().catch(() => {})
    // Through the gateway's own `err` serializer and redaction, as in production:
    // a bare `{ type, code }` came out as `{ errorCode: '400', stack: '' }`.
    t.match(reported()[0], { level: 50 }, 'as an error')
    t.same(
      reported()[0]?.err,
      { type: 'OTLPExporterError', errorCode: '400' },
      'by its class and its status, and nothing else (docs/observability.md)',
    )
    const logged = JSON.stringify(lines)
    t.notMatch(logged, /SEKRET/, 'no credential the collector echoed')
    t.notMatch(logged, /PEER-SAID/, 'nothing else it sent')
  },
)

t.test(
  'a malformed OTLP endpoint is reported without the credentials in it, user-info or query',
  async (t) => {
    for (const [env, kept] of [
      [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://user:SEKRET@collector host:4318' }, /collector host:4318/],
      [
        { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://collector:99999/v1/traces?api_key=SEKRET' },
        /collector:99999\/v1\/traces\?api_key=REDACTED/,
      ],
    ] as const) {
      // The exporter reads the process's environment itself.
      Object.assign(process.env, env)
      const { log, lines } = capturingLog()
      try {
        await startTracing(log, { ...env, OTEL_TRACES_SAMPLER: 'always_on' }).shutdown()
      } finally {
        for (const name of Object.keys(env)) delete process.env[name]
      }
      const name = Object.keys(env)[0]
      const reported = lines.filter((l) => /Could not parse environment-provided export URL/.test(l.msg))
      t.equal(reported.length, 1, `${name}: the bad URL is still reported`)
      t.match(reported[0]?.msg, kept, 'with what is not a secret, to find it by')
      t.notMatch(JSON.stringify(lines), /SEKRET/, `${name}: and nothing logged holds the secret`)
    }
  },
)

t.test("no diagnostic quotes an OTLP header's value, or a password however it is spelled", async (t) => {
  const endpoint = "http://us er:pa'ss-SEKRET@collector:4318"
  const { log, lines } = capturingLog()
  const stop = reportDiagnostics(log, {
    OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20hdr-SEKRET,x-tenant=acme',
    OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-api-key=key-SEKRET',
    // Not decodable: the value as written is all there is to find.
    OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'x-broken=%zz-SEKRET',
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'ops:pw-SEKRET@collector:4318',
  })
  try {
    // What the SDK's own messages quote: a header's value, raw or decoded, and a URL.
    diag.warn('Header "authorization" has invalid value (Bearer hdr-SEKRET) and will be ignored')
    diag.warn('headers: authorization=Bearer%20hdr-SEKRET,x-tenant=acme')
    diag.error('Header "x-api-key" has invalid value (key-SEKRET) and will be ignored')
    diag.warn(`Configuration: Could not parse environment-provided export URL: '${endpoint}'`)
    diag.warn("Configuration: no scheme in 'ops:pw-SEKRET@collector:4318', nor valid %zz-SEKRET")
    diag.warn('an export to https://ops:an-SEKRET@collector.example/v1/traces?sig=SEKRET&q=1 failed')
  } finally {
    stop()
  }
  t.equal(lines.length, 6, 'each is still logged')
  t.notMatch(JSON.stringify(lines), /SEKRET/, 'none with a secret in it')
  t.match(lines[5]?.msg, 'https://REDACTED@collector.example/v1/traces?sig=REDACTED&q=REDACTED')
})

t.test('a diagnostic carries no trace ids of the request whose context it was reported in', async (t) => {
  const { log, lines } = capturingLog()
  // The SDK installs the context manager, and the log's trace ids are on.
  const tracing = startTracing(log, QUIET)
  t.teardown(() => tracing.shutdown())
  const request = trace.wrapSpanContext({
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: TraceFlags.SAMPLED,
  })
  context.with(trace.setSpan(context.active(), request), () => {
    log.info('a line of the request')
    // As when an export a request's span set off fails in its context.
    diag.warn('a warning')
    diag.error('an error', Object.assign(new Error('reason phrase'), { code: 'ECONNREFUSED' }))
    globalErrorHandler(Object.assign(new Error('reason phrase'), { code: 'ECONNREFUSED' }))
  })
  t.match(lines[0], { trace_id: '0af7651916cd43dd8448eb211c80319c' }, "the request's own line has them")
  const reported = lines.filter((l) => /^OpenTelemetry: /.test(l.msg))
  t.equal(reported.length, 3, 'each is logged')
  for (const line of reported) {
    t.notOk('trace_id' in line || 'span_id' in line, `${line.msg}: without trace_id or span_id`)
  }
})
