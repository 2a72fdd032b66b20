import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * An OTLP/HTTP trace receiver on a free loopback port: what a collector
 * sees. Tests set `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`, the exporter's
 * OTLP/JSON encoding (OTLP specification, "JSON Protobuf Encoding": ids as
 * hex, enums as numbers), so each export decodes with `JSON.parse`. An
 * `http/protobuf` export (the SDK's default, which `bench/tracing.ts
 * --protocol http/protobuf` measures) is acknowledged without being
 * decoded: its spans are not in `spans`.
 */
export interface OtlpReceiver {
  /** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT; the exporter appends /v1/traces. */
  readonly url: string
  /** Every span received so far, in arrival order. */
  readonly spans: ReceivedSpan[]
  /** Every request body received, as sent: what a secrets scan reads. */
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
  readonly service: string | undefined
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
  status?: { code?: number; message?: string }
}
interface OtlpExport {
  resourceSpans: { resource?: { attributes?: OtlpKeyValue[] }; scopeSpans: { spans: OtlpSpan[] }[] }[]
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

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = []
  const bodies: string[] = []
  const contentTypes: string[] = []
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
      if (contentType.startsWith('application/x-protobuf')) {
        // An empty body is an empty ExportTraceServiceResponse: all accepted.
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end()
        return
      }
      const body = Buffer.concat(chunks).toString('utf8')
      bodies.push(body)
      const decoded = JSON.parse(body) as OtlpExport
      for (const rs of decoded.resourceSpans) {
        const service = attributesOf(rs.resource?.attributes)['service.name']
        for (const ss of rs.scopeSpans) {
          for (const s of ss.spans) {
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
              service: typeof service === 'string' ? service : undefined,
            })
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    bodies,
    contentTypes,
    clear() {
      spans.length = 0
      bodies.length = 0
      contentTypes.length = 0
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

/** The direct children of `parent` among `spans`. */
export function childrenOf(spans: readonly ReceivedSpan[], parent: ReceivedSpan): ReceivedSpan[] {
  return spans.filter((s) => s.traceId === parent.traceId && s.parentSpanId === parent.spanId)
}
