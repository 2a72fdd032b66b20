import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { GatehouseConfig } from '../config/types.js'
import type { SessionStore } from '../session/types.js'
import { audienceOf } from '../tokens/audience.js'
import { RequestMetrics, type RouteObserver } from './request-metrics.js'

/**
 * The labels whose values a config names: the route templates its apps
 * register, and its resources, audiences and providers (`configLabels`).
 */
export type ServedLabel = 'route' | 'resource' | 'audience' | 'idp'

/** The label values one app serves, for `GatewayMetrics.servedLabels`. */
export interface ServedLabels {
  serve(label: ServedLabel, value: string): void
  /** Once the app has closed. */
  close(): Promise<void>
}

/**
 * Each `ServedLabel`'s values in `config`: every provider; the login
 * token's resource (`""`) and each route's token label (`audienceOf`), the
 * `resource` of a refresh and the `audience` of an exchange.
 */
export function configLabels(
  config: Pick<GatehouseConfig, 'identityProviders' | 'routes'>,
): ReadonlyMap<Exclude<ServedLabel, 'route'>, ReadonlySet<string>> {
  const audiences = new Set<string>()
  for (const route of config.routes) {
    const label = audienceOf(route)?.label
    if (label !== undefined) audiences.add(label)
  }
  return new Map([
    ['idp', new Set(config.identityProviders.map((p) => p.name))],
    ['resource', new Set(['', ...audiences])],
    ['audience', audiences],
  ])
}

/**
 * Prometheus metrics of one gateway, in a registry of its own so two
 * gateways in one process (tests, embedding) never share counters.
 */
export class GatewayMetrics {
  readonly registry = new Registry()
  readonly #requests = new RequestMetrics(
    this.registry,
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  )
  readonly upstreamErrors = new Counter({
    name: 'gatehouse_upstream_errors_total',
    help: 'Upstream failures, by route and kind (timeout, unreachable, tls: a failed TLS handshake, invalid: an answer that is not valid HTTP, headers_too_large: a 431 to a request the gateway added its token to).',
    labelNames: ['route', 'kind'] as const,
    registers: [this.registry],
  })
  readonly upstreamCookiesDropped = new Counter({
    name: 'gatehouse_upstream_cookies_dropped_total',
    help: "Upstream Set-Cookie headers dropped because they named one of the gateway's own cookies, by route.",
    labelNames: ['route'] as const,
    registers: [this.registry],
  })
  readonly refreshes = new Counter({
    name: 'gatehouse_token_refreshes_total',
    help: 'Refresh-token redemptions at the IdP, by outcome (success; late_success: the answer to a refresh that timed out, stored when it came; late_lost: none usable came within oidc.lateAnswerWait either; invalid_grant, invalid_request, invalid_scope, unsupported_grant_type, other_oauth_error, bad_request (a 400 without an OAuth error): refused; invalid_target; client_refused; dpop_proof_refused: the IdP refused the gateway\'s DPoP proof, the session stays; unavailable; unavailable_limit: the session ended after tokens.unavailableLimit), resource (a configured routes[].resource, "scope:<scopes>" for a scope-only token, "" for the login token) and idp (the session\'s provider, identityProviders[].name; default for oidc:).',
    labelNames: ['outcome', 'resource', 'idp'] as const,
    registers: [this.registry],
  })
  readonly exchanges = new Counter({
    name: 'gatehouse_token_exchanges_total',
    help: "Token exchanges at the IdP for token: exchange routes (RFC 8693, or Entra ID's on-behalf-of), by outcome (success; invalid_target, invalid_scope, unauthorized_client, invalid_grant, invalid_request, unsupported_grant_type, other_oauth_error: the route answers 403; client_refused; dpop_proof_refused; unavailable; subject_expired: the ID token to exchange has expired, refused without asking the IdP; wrong_token_type: the answer's token_type or issued_token_type is not one the route may forward, or its token is the subject token given back, the route answers 502) audience (the route's exchange audience, else its resource, else \"scope:<scopes>\") and idp (the session's provider, identityProviders[].name; default for oidc:).",
    labelNames: ['outcome', 'audience', 'idp'] as const,
    registers: [this.registry],
  })
  readonly idpClientRefusals = new Counter({
    name: 'gatehouse_idp_client_refusals_total',
    help: "Calls the IdP refused because it did not accept the gateway's own client credentials (a configuration error), by operation, answer (invalid_client, unauthorized_client, unauthorized: a 401; client_certificate_refused: its TLS server refused the client certificate with an alert) and idp (the provider).",
    labelNames: ['operation', 'answer', 'idp'] as const,
    registers: [this.registry],
  })
  readonly idpClientRefused = new Gauge({
    name: 'gatehouse_idp_client_refused',
    help: "1 while the IdP refuses the gateway's client credentials for some call (see /readyz checks.clientAuth), else 0.",
    registers: [this.registry],
  })
  readonly tokenRetries = new Counter({
    name: 'gatehouse_upstream_token_retries_total',
    help: 'Requests replayed with a fresh token after the upstream refused theirs (401 invalid_token), by route.',
    labelNames: ['route'] as const,
    registers: [this.registry],
  })
  readonly tokenRetryCooldowns = new Counter({
    name: 'gatehouse_upstream_token_retry_cooldowns_total',
    help: '401 invalid_token answers passed to the browser without a refresh, because another token forced one within tokens.retryCooldown (on this route and session, or for this client-credentials token), by route.',
    labelNames: ['route'] as const,
    registers: [this.registry],
  })
  readonly refreshDuration = new Histogram({
    name: 'gatehouse_token_refresh_duration_seconds',
    help: 'Time the IdP took to answer a refresh, by idp (the provider).',
    labelNames: ['idp'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  })
  readonly refreshJoins = new Counter({
    name: 'gatehouse_refresh_joins_total',
    help: "Requests that waited on another request's refresh instead of refreshing (single-flight joins).",
    registers: [this.registry],
  })
  readonly clientTokenCache = new Counter({
    name: 'gatehouse_client_token_cache_total',
    help: 'Client-credentials token lookups, by result (hit, miss) and idp (the provider the token is from).',
    labelNames: ['result', 'idp'] as const,
    registers: [this.registry],
  })
  readonly logins = new Counter({
    name: 'gatehouse_logins_total',
    help: 'Completed logins, by whether the IdP issued a refresh token (issued, missing; a missing one ends the session at the first access-token expiry) and idp (the provider).',
    labelNames: ['refresh_token', 'idp'] as const,
    registers: [this.registry],
  })
  readonly websocketsOpen = new Gauge({
    name: 'gatehouse_websockets_open',
    help: 'WebSockets open on this instance, by route.',
    labelNames: ['route'] as const,
    registers: [this.registry],
  })
  readonly websocketRefusals = new Counter({
    name: 'gatehouse_websocket_upgrades_refused_total',
    help: 'WebSocket upgrades refused by a limit, by route and limit (session_limit: session.maxWebSockets, 429; instance_limit: server.maxWebSockets, 503).',
    labelNames: ['route', 'limit'] as const,
    registers: [this.registry],
  })
  readonly websocketBroken = new Counter({
    name: 'gatehouse_websocket_bound_closes_total',
    help: "WebSockets the gateway closed because one leg's peer broke a bound, by route, leg (browser, upstream) and bound (message_too_large: 1009; dead_peer: no frame and no progress for a ping interval; protocol_error: a frame ws refused, 1002, 1007 or 1008).",
    labelNames: ['route', 'leg', 'bound'] as const,
    registers: [this.registry],
  })
  readonly configReloads = new Counter({
    name: 'gatehouse_config_reloads_total',
    help: 'Config reloads (SIGHUP or a change of the config file), by result (applied; rejected: the file had problems or changed a setting that needs a restart, or its new app could not be built, its IdP discovered or it put in use, and the running config was kept; each retry of such a reload counts too).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  })
  readonly abandonedRequests = new Counter({
    name: 'gatehouse_http_requests_abandoned_total',
    help: 'Requests whose connection closed before their answer was complete, by route and method: the browser left (or the gateway cut off an answer an upstream broke off mid-body, also in gatehouse_upstream_errors_total; or, route unrouted, did not serve a WebSocket upgrade pipelined behind another answer). Not in gatehouse_http_requests_total.',
    labelNames: ['route', 'method'] as const,
    registers: [this.registry],
  })
  readonly sessionsOverBound = new Counter({
    name: 'gatehouse_sessions_over_bound_total',
    help: "session.maxPerUser at sign-in, by result (ended: a user's oldest session at the frontend, ended because a sign-in took the user past the bound; unchecked: a sign-in whose bound the session store could not check, which went on) and idp (the provider the user signed in with).",
    labelNames: ['result', 'idp'] as const,
    registers: [this.registry],
  })
  readonly sessionsUnreadable = new Counter({
    name: 'gatehouse_sessions_unreadable_total',
    help: "Requests answered 401 because their session record did not open with the cookie's key, by reason (refused: a seal did not verify; malformed: a field is not what the gateway writes; unknown-key). Nothing but the gateway writes these records: someone changed the store, or restored records from elsewhere.",
    labelNames: ['reason'] as const,
    registers: [this.registry],
  })
  readonly storeErrors = new Counter({
    name: 'gatehouse_session_store_errors_total',
    help: 'Requests that failed because the session store was unavailable.',
    registers: [this.registry],
  })

  /** How many apps serve each value of each label: a reload's app and the one it retires may share one. */
  readonly #served = new Map<ServedLabel, Map<string, number>>()
  /** Apps built and not yet closed. */
  #apps = 0

  /**
   * The label values one app serves (its route templates, each noted as it
   * is registered, and its config's resources, audiences and providers),
   * until the app closes: then the series labelled by a value no other app
   * serves end. A config generator that versions its paths (`/api/v41`)
   * grew /metrics by every route any config had, until a restart, and one
   * that renamed resources or providers by every one of those. The last app
   * to close keeps its series: that is the process shutting down, and a
   * last scrape still reads them.
   */
  servedLabels(): ServedLabels {
    const served: [ServedLabel, string][] = []
    this.#apps++
    let closed = false
    return {
      serve: (label, value) => {
        served.push([label, value])
        let counts = this.#served.get(label)
        if (counts === undefined) {
          counts = new Map()
          this.#served.set(label, counts)
        }
        counts.set(value, (counts.get(value) ?? 0) + 1)
      },
      close: async () => {
        if (closed) return
        closed = true
        this.#apps--
        const ended = new Map<ServedLabel, Set<string>>()
        for (const [label, value] of served) {
          const counts = this.#served.get(label)!
          const left = (counts.get(value) ?? 1) - 1
          if (left > 0) counts.set(value, left)
          else {
            counts.delete(value)
            const values = ended.get(label) ?? new Set()
            ended.set(label, values.add(value))
          }
        }
        if (this.#apps > 0) for (const [label, values] of ended) await this.#forget(label, values)
      },
    }
  }

  async #forget(label: ServedLabel, values: ReadonlySet<string>): Promise<void> {
    if (label === 'route') for (const route of values) this.#requests.forget(route)
    // Every metric of the registry that has the label, so one added later needs no list kept.
    for (const registered of this.registry.getMetricsAsArray()) {
      const metric = registered as unknown as Counter<string> & { readonly labelNames?: readonly string[] }
      if (!metric.labelNames?.includes(label)) continue
      for (const { labels } of (await metric.get()).values) {
        if (!values.has(String(labels[label]))) continue
        // prom-client removes a series by its whole label set only: a histogram's without its bucket's `le`.
        const { le: _bucket, ...series } = labels
        metric.remove(series as Record<string, string>)
      }
    }
  }

  /** `observeRequest` for one route, its label bound once. */
  requestsOf(route: string): RouteObserver {
    return this.#requests.route(route)
  }

  /** Counts one answered request (see `RequestMetrics` for why it is not a prom-client metric). */
  observeRequest(route: string, method: string, status: number, seconds: number): void {
    this.#requests.observe(route, method, status, seconds)
  }

  constructor(store?: SessionStore) {
    collectDefaultMetrics({ register: this.registry, prefix: 'gatehouse_' })
    // Both results from the start, so an alert on `rejected` has a series to watch.
    this.configReloads.inc({ result: 'applied' }, 0)
    this.configReloads.inc({ result: 'rejected' }, 0)
    if (store) this.watchStore(store)
  }

  /** Adds the gauges of the session store, read on scrape; once, when the store exists. */
  watchStore(store: SessionStore): void {
    const report = store.report?.() ?? {}
    const held = report.heldSessions
    if (held) {
      new Gauge({
        name: 'gatehouse_active_sessions',
        help: 'Sessions held by the memory store.',
        registers: [this.registry],
        collect() {
          this.set(held())
        },
      })
    }
    const localCache = report.localCache
    if (localCache) {
      new Gauge({
        name: 'gatehouse_session_cache_enabled',
        help: '1 when the local session copy is in use (Redis store); 0 when it is off, as on a Redis Cluster.',
        registers: [this.registry],
        collect() {
          this.set(localCache.enabled() ? 1 : 0)
        },
      })
    }
    const cache = localCache?.copy
    if (cache) {
      new Gauge({
        name: 'gatehouse_session_cache_entries',
        help: "Sessions in this instance's local copy (Redis store).",
        registers: [this.registry],
        collect() {
          this.set(cache.size)
        },
      })
      new Gauge({
        name: 'gatehouse_session_cache_armed',
        help: '1 while Redis invalidations are heard and the local copy may be served, else 0.',
        registers: [this.registry],
        collect() {
          this.set(cache.armed ? 1 : 0)
        },
      })
      // Counted as plain integers on the hot path, copied here on scrape.
      new Counter({
        name: 'gatehouse_session_cache_lookups_total',
        help: 'Session reads answered from the local copy (hit) or from Redis (miss).',
        labelNames: ['result'] as const,
        registers: [this.registry],
        collect() {
          const { hits, misses } = cache.stats
          this.reset()
          this.inc({ result: 'hit' }, hits)
          this.inc({ result: 'miss' }, misses)
        },
      })
    }
  }
}
