import { STATUS_CODES } from 'node:http'
import type { Registry } from 'prom-client'
import { methodLabel } from '../method-label.js'

interface Series {
  readonly labels: { readonly route: string; readonly method: string; readonly status: string }
  count: number
  sum: number
  /** Observations per bucket, not cumulative; the last slot is past the highest bound. */
  readonly buckets: number[]
}

/**
 * The `status` label of each status Node can write (100 to 999): its
 * number when HTTP names it (`http.STATUS_CODES`, some sixty codes), else
 * its class (`2xx` … `5xx`), else `other`. An upstream's status from 100
 * to 599 passes through to the browser (600 to 999 is answered 502), and
 * one that answered every code would otherwise make some 500 series per
 * route and method.
 */
const STATUS_LABELS: readonly string[] = Array.from({ length: 1000 }, (_, status) => {
  if (STATUS_CODES[status] !== undefined) return String(status)
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'other'
})

function statusLabel(status: number): string {
  return STATUS_LABELS[status] ?? 'other'
}

/** Counts one answered request of a route: method, status, seconds. */
export type RouteObserver = (method: string, status: number, seconds: number) => void

interface Sample {
  readonly labels: Record<string, string | number>
  readonly value: number
  readonly metricName?: string
}

/**
 * `gatehouse_http_requests_total` and `gatehouse_http_request_duration_seconds`,
 * the two metrics every request answered updates (one the browser left
 * before its answer was complete updates neither). prom-client's Counter and Histogram
 * hash the label set on every call, even through `labels()`, and allocate
 * while doing it; here a request costs three Map lookups and a few integer
 * adds, and the figures become samples only when Prometheus scrapes. The
 * registry renders them like prom-client's own (a test compares the text).
 */
export class RequestMetrics {
  readonly #series = new Map<string, Map<string, Map<string, Series>>>()
  readonly #bounds: readonly number[]

  constructor(registry: Registry, bounds: readonly number[]) {
    this.#bounds = bounds
    const all = () =>
      [...this.#series.values()].flatMap((m) => [...m.values()]).flatMap((m) => [...m.values()])
    const reset = () => this.#series.clear()
    registry.registerMetric(
      metric(
        'gatehouse_http_requests_total',
        'Requests answered, by route, method and status.',
        'counter',
        () => all().map((s) => ({ labels: s.labels, value: s.count })),
        reset,
      ) as never,
    )
    registry.registerMetric(
      metric(
        'gatehouse_http_request_duration_seconds',
        'Time to answer a request, by route, method and status.',
        'histogram',
        () => all().flatMap((s) => this.#histogram(s)),
        reset,
      ) as never,
    )
  }

  observe(route: string, method: string, status: number, seconds: number): void {
    this.#observe(route, this.#byMethod(route), method, status, seconds)
  }

  /** Drops a route's series: no app serves it any more (`GatewayMetrics.servedLabels`). */
  forget(route: string): void {
    this.#series.delete(route)
  }

  /** The observer of one route, bound once when the route is registered. */
  route(route: string): RouteObserver {
    return (method, status, seconds) => this.#observe(route, this.#byMethod(route), method, status, seconds)
  }

  #byMethod(route: string): Map<string, Map<string, Series>> {
    let byMethod = this.#series.get(route)
    if (!byMethod) {
      byMethod = new Map()
      this.#series.set(route, byMethod)
    }
    return byMethod
  }

  #observe(
    route: string,
    byMethod: Map<string, Map<string, Series>>,
    rawMethod: string,
    rawStatus: number,
    seconds: number,
  ): void {
    // Both bounded: the client picks the method, the upstream the status.
    const method = methodLabel(rawMethod)
    const status = statusLabel(rawStatus)
    let byStatus = byMethod.get(method)
    if (!byStatus) {
      byStatus = new Map()
      byMethod.set(method, byStatus)
    }
    let series = byStatus.get(status)
    if (!series) {
      series = {
        labels: { route, method, status },
        count: 0,
        sum: 0,
        buckets: new Array<number>(this.#bounds.length + 1).fill(0),
      }
      byStatus.set(status, series)
    }
    series.count++
    series.sum += seconds
    let i = 0
    while (i < this.#bounds.length && seconds > this.#bounds[i]!) i++
    series.buckets[i]!++
  }

  #histogram(series: Series): Sample[] {
    const name = 'gatehouse_http_request_duration_seconds'
    const samples: Sample[] = []
    let cumulative = 0
    this.#bounds.forEach((le, i) => {
      cumulative += series.buckets[i]!
      samples.push({ labels: { le, ...series.labels }, value: cumulative, metricName: `${name}_bucket` })
    })
    samples.push({
      labels: { le: '+Inf', ...series.labels },
      value: series.count,
      metricName: `${name}_bucket`,
    })
    samples.push({ labels: series.labels, value: series.sum, metricName: `${name}_sum` })
    samples.push({ labels: series.labels, value: series.count, metricName: `${name}_count` })
    return samples
  }
}

/** The shape prom-client's registry renders: what its own metrics return from `get()`. */
function metric(
  name: string,
  help: string,
  type: 'counter' | 'histogram',
  values: () => Sample[],
  reset: () => void,
) {
  return {
    name,
    help,
    type,
    aggregator: 'sum' as const,
    get: async () => ({ name, help, type, values: values(), aggregator: 'sum' as const }),
    reset,
  }
}
