import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'

/**
 * The OTLP protobuf messages as the OpenTelemetry project generates them
 * from opentelemetry-proto: `otlp-proto` is @opentelemetry/otlp-transformer
 * 0.215, the last release that shipped that generated code (later ones
 * encode by hand and cannot decode), so an export is decoded by the
 * official definitions, not by ours.
 */
const ExportTraceServiceRequest = (
  createRequire(import.meta.url)('otlp-proto/build/src/generated/root.js') as {
    opentelemetry: { proto: { collector: { trace: { v1: { ExportTraceServiceRequest: ProtobufType } } } } }
  }
).opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest

interface ProtobufType {
  decode(bytes: Uint8Array): object
  toObject(message: object, options: { longs: StringConstructor; enums: NumberConstructor }): unknown
}

/**
 * An OTLP/HTTP trace receiver on a free loopback port: what a collector
 * sees. Both encodings the HTTP exporter speaks are decoded: `http/protobuf`
 * (the SDK's default) with the generated message types above, and
 * `http/json` (OTLP specification, "JSON Protobuf Encoding": ids as hex,
 * enums as numbers) with `JSON.parse`; either way the spans land in
 * `spans` in one form, ids as hex.
 */
export interface OtlpReceiver {
  /** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT; the exporter appends /v1/traces. */
  readonly url: string
  /** Every span received so far, in arrival order (decoded when read). */
  readonly spans: ReceivedSpan[]
  /** Every export received, as JSON (a protobuf one as decoded): what a secrets scan reads. */
  readonly bodies: string[]
  /** Content types the exporter sent. */
  readonly contentTypes: string[]
  clear(): void
  close(): Promise<void>
}

export interface ReceivedSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string
  readonly name: string
  /** 1 internal, 2 server, 3 client (OTLP SpanKind). */
  readonly kind: number
  readonly attributes: Readonly<Record<string, string | number | boolean | undefined>>
  readonly status: { readonly code: number; readonly message?: string }
  readonly events: readonly ReceivedEvent[]
  readonly service: string | undefined
  /** Its resource's attributes; an array's value is undefined (its key is kept). */
  readonly resource: Readonly<Record<string, string | number | boolean | undefined>>
}

export interface ReceivedEvent {
  readonly name: string
  readonly attributes: Readonly<Record<string, string | number | boolean | undefined>>
}

interface OtlpValue {
  stringValue?: string
  intValue?: string | number
  doubleValue?: number
  boolValue?: boolean
}
interface OtlpKeyValue {
  key: string
  value: OtlpValue
}
interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  attributes?: OtlpKeyValue[]
  events?: { name: string; attributes?: OtlpKeyValue[] }[]
  status?: { code?: number; message?: string }
}
interface OtlpExport {
  resourceSpans: { resource?: { attributes?: OtlpKeyValue[] }; scopeSpans?: { spans?: OtlpSpan[] }[] }[]
}

function decodeValue(v: OtlpValue): string | number | boolean | undefined {
  if (v.stringValue !== undefined) return v.stringValue
  if (v.intValue !== undefined) return Number(v.intValue)
  if (v.doubleValue !== undefined) return v.doubleValue
  return v.boolValue
}

function attributesOf(
  list: OtlpKeyValue[] | undefined,
): Record<string, string | number | boolean | undefined> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, decodeValue(kv.value)]))
}

/**
 * A receiver this test process's spans are exported to, closed when `t`
 * ends. The SDK reads its exporter, protocol and sampler from the standard
 * variables, as in production, so they are set here, before any gateway
 * starts it; OTLP/JSON unless `json: false` leaves the SDK's default, protobuf.
 */
export async function receiveSpans(
  t: Test,
  { sampler = 'always_on', json = true }: { readonly sampler?: string; readonly json?: boolean } = {},
): Promise<OtlpReceiver> {
  const receiver = await startOtlpReceiver()
  t.teardown(() => receiver.close())
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url
  if (json) process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json'
  else delete process.env.OTEL_EXPORTER_OTLP_PROTOCOL
  delete process.env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
  process.env.OTEL_TRACES_SAMPLER = sampler
  delete process.env.OTEL_SERVICE_NAME
  return receiver
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = []
  const bodies: string[] = []
  const contentTypes: string[] = []
  // Exports are kept as they came and decoded when `spans` or `bodies` is
  // read. A collector runs on another machine; this one shares the
  // benchmark's cores with the gateway it measures, so decoding on arrival
  // would charge the traced peer for the receiver's own work
  // (bench/tracing.ts reads the spans after each round's loads).
  const pending: { protobuf: boolean; body: Buffer }[] = []
  const decodePending = () => {
    for (const { protobuf, body } of pending.splice(0)) {
      const decoded = protobuf ? fromProtobuf(body) : (JSON.parse(body.toString('utf8')) as OtlpExport)
      bodies.push(JSON.stringify(decoded))
      for (const rs of decoded.resourceSpans) {
        const resource = attributesOf(rs.resource?.attributes)
        const service = resource['service.name']
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            spans.push({
              traceId: s.traceId,
              spanId: s.spanId,
              parentSpanId: s.parentSpanId ?? '',
              name: s.name,
              kind: s.kind,
              attributes: attributesOf(s.attributes),
              status: {
                code: s.status?.code ?? 0,
                ...(s.status?.message ? { message: s.status.message } : {}),
              },
              events: (s.events ?? []).map((e) => ({ name: e.name, attributes: attributesOf(e.attributes) })),
              service: typeof service === 'string' ? service : undefined,
              resource,
            })
          }
        }
      }
    }
  }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end()
        return
      }
      const contentType = req.headers['content-type'] ?? ''
      contentTypes.push(contentType)
      const protobuf = contentType.startsWith('application/x-protobuf')
      pending.push({ protobuf, body: Buffer.concat(chunks) })
      // An empty body is an empty ExportTraceServiceResponse in either encoding: all accepted.
      if (protobuf) res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end()
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    get spans() {
      decodePending()
      return spans
    },
    get bodies() {
      decodePending()
      return bodies
    },
    contentTypes,
    clear() {
      pending.length = 0
      spans.length = 0
      bodies.length = 0
      contentTypes.length = 0
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

/** OTLP's SpanKind and status code values, as a decoded span carries them. */
export const SERVER = 2
export const CLIENT = 3
export const ERROR = 2

/** The one span of `spans`; `what` names it in the failure. */
export function one(spans: readonly ReceivedSpan[], what: string): ReceivedSpan {
  if (spans.length !== 1) throw new Error(`expected one ${what}, got ${spans.length}`)
  return spans[0]!
}

/** The direct children of `parent` among `spans`. */
export function childrenOf(spans: readonly ReceivedSpan[], parent: ReceivedSpan): ReceivedSpan[] {
  return spans.filter((s) => s.traceId === parent.traceId && s.parentSpanId === parent.spanId)
}

/** A protobuf export in the OTLP/JSON form: ids (bytes) as hex, 64-bit integers as strings. */
function fromProtobuf(body: Buffer): OtlpExport {
  const message = ExportTraceServiceRequest.toObject(ExportTraceServiceRequest.decode(body), {
    longs: String,
    enums: Number,
  })
  return JSON.parse(
    JSON.stringify(message, (key, value) =>
      (key === 'traceId' || key === 'spanId' || key === 'parentSpanId') && value !== null
        ? Buffer.from((value as { data: number[] }).data ?? value).toString('hex')
        : value,
    ),
  ) as OtlpExport
}
