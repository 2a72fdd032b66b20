import { parseDuration } from './duration.js'
import type { RawConfig } from './schema.js'
import { parseStore } from './store-url.js'

interface Finding {
  readonly path: (string | number)[]
  readonly message: string
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/

function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value)
  } catch {
    return undefined
  }
}

/** What the schema cannot say: cross-field rules and the shape of URLs and paths. */
export function checkSemantics(config: RawConfig): Finding[] {
  const findings: Finding[] = []
  const add = (path: (string | number)[], message: string) => findings.push({ path, message })

  const publicUrl = parseUrl(config.server.publicUrl)
  if (!publicUrl || !['http:', 'https:'].includes(publicUrl.protocol)) {
    add(['server', 'publicUrl'], 'must be an http(s) URL such as https://app.example.com')
  } else if (publicUrl.pathname !== '/' || publicUrl.search || publicUrl.hash) {
    add(['server', 'publicUrl'], 'must be an origin only, without a path, query or fragment')
  }

  const issuer = parseUrl(config.oidc.issuer)
  if (!issuer || !['http:', 'https:'].includes(issuer.protocol)) {
    add(['oidc', 'issuer'], 'must be an https URL')
  } else if (issuer.protocol === 'http:' && !LOOPBACK.test(issuer.hostname)) {
    add(
      ['oidc', 'issuer'],
      'must use https; plain http is allowed only for loopback hosts (localhost, 127.0.0.1, [::1])',
    )
  }

  const { secret, secrets } = config.session
  if (secret === undefined && secrets === undefined)
    add(['session', 'secret'], 'is required (or secrets: [new, old])')
  if (secret !== undefined && secrets !== undefined)
    add(['session', 'secrets'], 'set either secret or secrets, not both')
  if (secret !== undefined && secret.length < 32) {
    add(['session', 'secret'], `must be at least 32 characters (got ${secret.length})`)
  }
  secrets?.forEach((s, i) => {
    if (s.length < 32) add(['session', 'secrets', i], `must be at least 32 characters (got ${s.length})`)
  })

  const store = parseStore(config.session.store)
  if (typeof store === 'string') add(['session', 'store'], store)
  // A brace would start a hash tag of its own and split a session's keys
  // over Redis Cluster slots (Cluster spec, "Hash tags").
  if (/[{}]/.test(config.session.keyPrefix)) add(['session', 'keyPrefix'], 'must not contain { or }')
  if (parseDuration(config.session.absoluteTimeout) < parseDuration(config.session.idleTimeout)) {
    add(['session', 'absoluteTimeout'], 'must not be shorter than idleTimeout')
  }

  const basePath = config.auth.basePath
  if (!/^\/[A-Za-z0-9._~\-/]*$/.test(basePath) || basePath.includes('//') || basePath === '/') {
    add(['auth', 'basePath'], 'must be a path such as /auth')
  }

  const seen = new Map<string, number>()
  config.routes.forEach((route, i) => {
    const path = route.path.length > 1 ? route.path.replace(/\/+$/, '') : route.path
    if (
      !path.startsWith('/') ||
      path.includes('//') ||
      /(^|\/)\.\.?(\/|$)/.test(path) ||
      /[?#\s]/.test(path)
    ) {
      add(['routes', i, 'path'], 'must be a path prefix such as /api/orders, without .., query or spaces')
    }
    const first = seen.get(path)
    if (first !== undefined) add(['routes', i, 'path'], `duplicates routes[${first}].path (${path})`)
    else seen.set(path, i)
    if (
      path === basePath ||
      path.startsWith(`${basePath}/`) ||
      (basePath.startsWith(`${path}/`) && path !== '/')
    ) {
      add(['routes', i, 'path'], `overlaps auth.basePath (${basePath})`)
    }
    const upstream = parseUrl(route.upstream)
    if (!upstream || !['http:', 'https:'].includes(upstream.protocol)) {
      add(['routes', i, 'upstream'], 'must be an http(s) URL such as http://orders:8080')
    } else if (upstream.pathname !== '/' || upstream.search) {
      add(['routes', i, 'upstream'], 'must be an origin only; use rewritePath to change the path')
    }
    if (route.rewritePath !== undefined && !route.rewritePath.startsWith('/')) {
      add(['routes', i, 'rewritePath'], 'must start with /')
    }
    if (route.token !== 'client' && route.scopes.length > 0) {
      add(['routes', i, 'scopes'], 'applies only to token: client routes')
    }
  })
  return findings
}
