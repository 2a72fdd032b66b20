/**
 * The rules of `frontends:` that the schema cannot say: names, cookies and
 * matches unique, and every route and sign-in endpoint of a frontend
 * reachable through that frontend, by the same rule the gateway routes by
 * (src/frontend-match.ts).
 */
import { type FrontendMatch, FrontendMatcher } from '../frontend-match.js'
import { withoutPort } from './frontend-host.js'
import { ROUTER_SYNTAX, ROUTER_SYNTAX_PROBLEM } from './own-paths.js'
import { rawProviders } from './providers.js'
import { escapedPathProblem } from './route-paths.js'
import type { RawConfig } from './schema.js'

type Path = (string | number)[]

interface Finding {
  readonly path: Path
  readonly message: string
}

type RawFrontend = NonNullable<RawConfig['frontends']>[number]

/** One list of routes and the sign-in base path they must stay clear of. */
export interface RouteList {
  readonly routes: RawConfig['routes']
  /** Where the list is: `['routes']` or `['frontends', 2, 'routes']`. */
  readonly at: Path
  readonly basePath: string
  /** The option the base path comes from, for messages. */
  readonly basePathName: string
  /** The providers the list's frontend signs in with; `undefined`: every provider. */
  readonly identityProviders?: readonly string[] | undefined
}

/** `routes`, and each frontend's routes. */
export function routeLists(config: Pick<RawConfig, 'routes' | 'frontends' | 'auth'>): RouteList[] {
  const lists: RouteList[] = [
    { routes: config.routes, at: ['routes'], basePath: config.auth.basePath, basePathName: 'auth.basePath' },
  ]
  config.frontends?.forEach((frontend, i) => {
    lists.push({
      routes: frontend.routes,
      at: ['frontends', i, 'routes'],
      basePath: frontendBasePath(config, frontend),
      basePathName: `frontends[${i}].auth.basePath`,
      identityProviders: frontend.identityProviders,
    })
  })
  return lists
}

/** No trailing slash; `''` for none. */
export function trimPrefix(prefix: string | undefined): string {
  return prefix === undefined ? '' : prefix.replace(/\/+$/, '')
}

/** What a frontend's requests are told by, as a finding names it: its host, its path prefix, or both. */
function matchedBy(match: FrontendMatch): string {
  if (match.host === undefined) return `pathPrefix ${match.pathPrefix}`
  return match.pathPrefix === '' ? `host ${match.host}` : `host ${match.host}, pathPrefix ${match.pathPrefix}`
}

/** The frontend's own `auth.basePath`, or the top-level one under its prefix. */
export function frontendBasePath(config: Pick<RawConfig, 'auth'>, frontend: RawFrontend): string {
  const own = frontend.auth.basePath
  const path = own ?? `${trimPrefix(frontend.pathPrefix)}${config.auth.basePath}`
  return path.length > 1 ? path.replace(/\/+$/, '') : path
}

/** The name of the session cookie before its `__Host-Http-` prefix. */
export function frontendCookieName(config: RawConfig, frontend: RawFrontend): string {
  return frontend.cookieName ?? `${config.session.cookieName}-${frontend.name}`
}

/** The identity providers a frontend may name: those of `identityProviders`, or `default` for `oidc:`. */
export function providerNames(config: RawConfig): readonly string[] {
  return rawProviders(config).map((p) => p.name)
}

export function formatAt(path: readonly (string | number)[]): string {
  let out = ''
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`
  return out
}

function hostOf(url: string): string | undefined {
  return URL.canParse(url) ? new URL(url).hostname.toLowerCase() : undefined
}

const PREFIX_SHAPE = /^(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+\/?$/

/** Each `frontends[]` rule; empty without `frontends:`. */
export function checkFrontends(config: RawConfig): Finding[] {
  const frontends = config.frontends
  if (frontends === undefined) return []
  const findings: Finding[] = []
  const add = (path: Path, message: string) => findings.push({ path, message })
  if (config.routes.length > 0) {
    add(['routes'], 'with frontends, each frontend lists its own routes: move these under one of them')
  }
  const names = new Map<string, number>()
  const cookies = new Map<string, number>()
  const matches = new Map<string, number>()
  const providers = providerNames(config)
  // A host with a port is reported by the schema (frontend-host.ts); read
  // without it, the rules below say nothing of it a second time.
  const matchable = frontends.map((f) => ({
    host: (f.host === undefined ? undefined : (withoutPort(f.host) ?? f.host))?.toLowerCase(),
    pathPrefix: trimPrefix(f.pathPrefix),
  }))
  frontends.forEach((frontend, i) => {
    const at = (...rest: (string | number)[]): Path => ['frontends', i, ...rest]
    const firstName = names.get(frontend.name)
    if (firstName !== undefined) add(at('name'), `duplicates frontends[${firstName}].name (${frontend.name})`)
    else names.set(frontend.name, i)

    if (frontend.host === undefined && frontend.pathPrefix === undefined) {
      add(at(), 'needs host, pathPrefix or both: they say which requests this frontend serves')
    }
    if (
      frontend.pathPrefix !== undefined &&
      (!PREFIX_SHAPE.test(frontend.pathPrefix) || /(^|\/)\.\.?(\/|$)/.test(frontend.pathPrefix))
    ) {
      add(at('pathPrefix'), 'must be a path prefix such as /partners, without .., query or spaces')
    } else if (frontend.pathPrefix !== undefined) {
      const escaped = escapedPathProblem(frontend.pathPrefix)
      if (escaped !== undefined) add(at('pathPrefix'), escaped)
    }
    // Its sign-in endpoints are registered under it (frontendBasePath).
    if (frontend.pathPrefix !== undefined && ROUTER_SYNTAX.test(frontend.pathPrefix))
      add(at('pathPrefix'), ROUTER_SYNTAX_PROBLEM)
    const { host, pathPrefix } = matchable[i]!
    const key = `${host ?? '*'} ${pathPrefix}`
    const same = matches.get(key)
    if (same !== undefined) {
      add(
        at(),
        `matches the same requests as frontends[${same}] (host ${host ?? 'any'}, pathPrefix ${pathPrefix || 'none'})`,
      )
    } else matches.set(key, i)

    checkPublicUrlHost(frontend, host, at, add)

    const cookie = frontendCookieName(config, frontend)
    for (const name of [cookie, `${cookie}-login`]) {
      const other = cookies.get(name)
      if (other !== undefined && other !== i) {
        // A name made from the defaults has no cookieName line to point at:
        // the frontend's name made it, and cookieName is the way out.
        if (frontend.cookieName === undefined) {
          add(
            at('name'),
            `gives the session cookie the default name ${cookie} (session.cookieName-name), which is also frontends[${other}]'s session or login cookie name: set frontends[${i}].cookieName`,
          )
        } else add(at('cookieName'), `${cookie} is also frontends[${other}]'s session or login cookie name`)
        break
      }
    }
    cookies.set(cookie, i)
    cookies.set(`${cookie}-login`, i)

    frontend.identityProviders?.forEach((name, j) => {
      if (!providers.includes(name)) {
        add(at('identityProviders', j), `names no identity provider (known: ${providers.join(', ')})`)
      }
    })
    // A route for sessions of a provider this frontend never signs in with serves no one.
    const allowed = frontend.identityProviders
    frontend.routes.forEach((route, k) => {
      route.identityProviders?.forEach((name, j) => {
        if (allowed !== undefined && !allowed.includes(name) && providers.includes(name)) {
          add(
            at('routes', k, 'identityProviders', j),
            `${name} is not one of this frontend's identityProviders (${allowed.join(', ')})`,
          )
        }
      })
    })
  })
  findings.push(...checkReachable(config, frontends, matchable))
  return findings
}

function checkPublicUrlHost(
  frontend: RawFrontend,
  host: string | undefined,
  at: (...rest: (string | number)[]) => Path,
  add: (path: Path, message: string) => void,
): void {
  // Its shape is checked with server.publicUrl's (url-rules.ts).
  const urlHost = hostOf(frontend.publicUrl)
  if (urlHost === undefined) return
  // The browser comes back from the IdP to publicUrl: another host would land in another frontend.
  if (host !== undefined && urlHost !== host) {
    add(at('publicUrl'), `is on ${urlHost}, but this frontend serves host ${host}`)
  }
}

/**
 * Every sign-in endpoint and route of a frontend must be served by that
 * frontend at its own publicUrl: otherwise a longer prefix or a host of
 * another frontend takes its requests, and it is unreachable.
 */
function checkReachable(
  config: RawConfig,
  frontends: readonly RawFrontend[],
  matchable: readonly FrontendMatch[],
): Finding[] {
  const findings: Finding[] = []
  // One that matches everything is reported already; it would hide every other finding here.
  const matcher = new FrontendMatcher(matchable.filter((m) => m.host !== undefined || m.pathPrefix !== ''))
  frontends.forEach((frontend, i) => {
    // A publicUrl on another host is reported on its own (checkPublicUrlHost).
    const match = matchable[i]!
    if (match.host === undefined && match.pathPrefix === '') return
    const host = match.host ?? hostOf(frontend.publicUrl)
    if (host === undefined) return
    const servedBy = (path: string) => {
      const served = matcher.select(host, path)
      return served === undefined ? -1 : matchable.indexOf(served)
    }
    const where = (path: string) => {
      const j = servedBy(path)
      return j === -1
        ? `lies outside this frontend (${matchedBy(matchable[i]!)})`
        : `is served by frontends[${j}] (${frontends[j]!.name}) at ${frontend.publicUrl}, not this frontend`
    }
    const basePath = frontendBasePath(config, frontend)
    if (servedBy(basePath) !== i) {
      findings.push({
        path: frontend.auth.basePath === undefined ? ['frontends', i] : ['frontends', i, 'auth', 'basePath'],
        message: `sign-in path ${basePath} ${where(basePath)}`,
      })
    }
    frontend.routes.forEach((route, k) => {
      if (servedBy(route.path) !== i) {
        findings.push({ path: ['frontends', i, 'routes', k, 'path'], message: where(route.path) })
      }
    })
  })
  return findings
}

/**
 * Providers that no frontend signs in with, when every frontend lists its
 * own: nothing reaches them (a route may name only its frontend's, and
 * their logout tokens are verified at no frontend), yet they are
 * discovered and reported at /readyz. Inert, so a warning: a provider may
 * be added a step before the frontend that will list it.
 */
export function unusedProviders(config: RawConfig): Finding[] {
  const frontends = config.frontends ?? []
  if (frontends.length === 0 || frontends.some((f) => f.identityProviders === undefined)) return []
  const listed = new Set(frontends.flatMap((f) => f.identityProviders ?? []))
  return rawProviders(config)
    .filter((provider) => !listed.has(provider.name))
    .map((provider) => ({
      path: [...provider.path, 'name'],
      message: `${provider.name} is in no frontend's identityProviders: no one signs in with it and no route gets its tokens; list it at a frontend, or remove it`,
    }))
}
