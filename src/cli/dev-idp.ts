/**
 * `gatehouse dev-idp` (`npm run dev-idp` in a checkout): the bundled
 * DEVELOPMENT-ONLY OpenID Provider (dev/idp.ts, panva's oidc-provider with
 * its any-user login form) with one client registered as the command line
 * says, and the `oidc:` block to paste into a Gatehouse config. So a new
 * user signs in through their own config without a real IdP.
 *
 * dev/idp.ts is not part of the build (src/ is) and oidc-provider is a dev
 * dependency, so both are loaded only here, and an installation without
 * them gets one line saying what the command is for and how to get it.
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

/** What this command uses of dev/idp.ts; the build cannot see that file, so not its own types. */
interface DevIdpModule {
  startDevIdp(options: {
    readonly profile: Profile
    readonly port: number
    readonly host: string
    readonly accessTokenTtl?: number
    readonly clients: readonly {
      readonly clientId: string
      readonly clientSecret: string
      readonly redirectUris: readonly string[]
      readonly postLogoutRedirectUris: readonly string[]
    }[]
  }): Promise<{ readonly issuer: string; close(): Promise<void> }>
}

type Profile = 'strict' | 'lenient'

export interface DevIdpIO {
  readonly stdout: (line: string) => void
  readonly stderr: (line: string) => void
  readonly env: NodeJS.ProcessEnv
  /** Loads dev/idp.ts; injected by tests. */
  readonly load?: () => Promise<DevIdpModule>
  /** Close on SIGINT/SIGTERM and exit 0. Default true. */
  readonly handleSignals?: boolean
}

/** Default port: the issuer routes.yaml assumes, `http://localhost:4000`, but on 127.0.0.1. */
export const DEV_IDP_PORT = 4000

/**
 * Default access-token lifetime, seconds: short, so refreshes happen while
 * a developer works, and more than twice the default `tokens.refreshBefore`
 * (30 s, as routes.yaml sets it), counted as the gateway counts it (a second
 * less, token-lifetime.ts). At 60 s every first sign-in was told
 * GATEHOUSE_TOKEN_LIFETIME_SHORT, of a config it had not been given.
 */
export const DEV_IDP_ACCESS_TOKEN_TTL = 120

export const DEV_IDP_USAGE = `Usage: gatehouse dev-idp --client-id ID --redirect-uri URL [options]
       npm run dev-idp -- --client-id ID --redirect-uri URL [options]   (in a checkout)

Starts a DEVELOPMENT-ONLY OpenID Provider on loopback, with one client
registered, and prints the oidc: block for your Gatehouse config. Any user
name signs in with any password: never use it for real users.

Options:
      --client-id ID               The client to register (oidc.clientId).
      --redirect-uri URL           Gatehouse's callback, e.g. http://localhost:3000/auth/callback
                                   (server.publicUrl + auth.basePath + /callback; with
                                   identityProviders: /callback/<name>, as gatehouse check
                                   prints). Repeatable.
      --post-logout-redirect-uri URL
                                   Where logout may return. Repeatable. Default: the origin
                                   of each redirect URI, with a trailing slash.
      --client-secret SECRET       Default: $OIDC_CLIENT_SECRET if set, else a random one.
      --port N                     Default ${DEV_IDP_PORT}; 0 picks a free port.
      --host HOST                  Default 127.0.0.1. The issuer is http://HOST:PORT.
      --profile strict|lenient     strict (default): refresh tokens only for offline_access
                                   with prompt=consent, and a consent page (OIDC Core §11),
                                   as certified providers do. lenient: always, no consent.
      --access-token-ttl SECONDS   Default ${DEV_IDP_ACCESS_TOKEN_TTL}: short, so refreshes happen while you
                                   work; at most twice tokens.refreshBefore (30 s unless
                                   set), Gatehouse renews halfway through instead, and warns.
  -h, --help                       Show this help.
`

class Usage extends Error {}

interface Options {
  readonly clientId: string
  readonly clientSecret: string
  readonly secretFrom: 'option' | 'environment' | 'random'
  readonly redirectUris: readonly string[]
  readonly postLogoutRedirectUris: readonly string[]
  readonly port: number
  readonly host: string
  readonly profile: Profile
  readonly accessTokenTtl: number
}

function httpUrl(value: string, option: string): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new Usage(`${option} must be an absolute URL, got "${value}"`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Usage(`${option} must be an http or https URL, got "${value}"`)
  return url
}

function integer(value: string | undefined, option: string, fallback: number, max: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!/^\d+$/.test(value) || n > max)
    throw new Usage(`${option} must be an integer from 0 to ${max}, got "${value}"`)
  return n
}

function options(argv: readonly string[], env: NodeJS.ProcessEnv): Options | 'help' {
  let values: ReturnType<typeof parse>['values']
  try {
    values = parse(argv).values
  } catch (err) {
    throw new Usage((err as Error).message)
  }
  if (values.help) return 'help'
  if (!values['client-id']) throw new Usage('--client-id is required')
  const redirects = values['redirect-uri'] ?? []
  if (redirects.length === 0) throw new Usage('--redirect-uri is required')
  const redirectUris = redirects.map((uri) => httpUrl(uri, '--redirect-uri').href)
  const postLogout = values['post-logout-redirect-uri'] ?? []
  const postLogoutRedirectUris =
    postLogout.length > 0
      ? postLogout.map((uri) => httpUrl(uri, '--post-logout-redirect-uri').href)
      : // Gatehouse sends `${server.publicUrl}/` as post_logout_redirect_uri.
        [...new Set(redirectUris.map((uri) => `${new URL(uri).origin}/`))]
  const host = values.host ?? '127.0.0.1'
  // The issuer is built from the host: a wildcard address is no place to send a browser to.
  if (['0.0.0.0', '::', '[::]', ''].includes(host))
    throw new Usage(
      `--host must be an address clients reach it at (the issuer is http://HOST:PORT), not "${host}"`,
    )
  const profile = values.profile ?? 'strict'
  if (profile !== 'strict' && profile !== 'lenient')
    throw new Usage(`--profile must be strict or lenient, got "${profile}"`)
  const given = values['client-secret'] ?? env.OIDC_CLIENT_SECRET
  return {
    clientId: values['client-id'],
    clientSecret: given || randomBytes(24).toString('base64url'),
    secretFrom: values['client-secret'] ? 'option' : env.OIDC_CLIENT_SECRET ? 'environment' : 'random',
    redirectUris,
    postLogoutRedirectUris,
    port: integer(values.port, '--port', DEV_IDP_PORT, 65_535),
    host,
    profile,
    accessTokenTtl: integer(
      values['access-token-ttl'],
      '--access-token-ttl',
      DEV_IDP_ACCESS_TOKEN_TTL,
      86_400,
    ),
  }
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: false,
    options: {
      'client-id': { type: 'string' },
      'redirect-uri': { type: 'string', multiple: true },
      'post-logout-redirect-uri': { type: 'string', multiple: true },
      'client-secret': { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      profile: { type: 'string' },
      'access-token-ttl': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[?::1\]?)$/

/** A shell word: single-quoted unless it needs no quoting. */
function shellWord(value: string): string {
  return /^[\w.+/=:@-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`
}

/** A YAML plain scalar when safe, else a double-quoted one. */
function yamlScalar(value: string): string {
  return /^[\w./:@-]+$/.test(value) && !/^[-:]/.test(value) ? value : JSON.stringify(value)
}

/**
 * What the command prints once the IdP listens: the warning, what was
 * registered, the `oidc:` block to paste and the environment line for its
 * secret (the block refers to the variable, so the secret stays out of the file).
 */
export function devIdpBanner(issuer: string, o: Omit<Options, 'port'>): string[] {
  const strict = o.profile === 'strict'
  return [
    'gatehouse dev-idp: DEVELOPMENT ONLY. Any user name signs in, with any password.',
    'Never use it for real users, and never expose it beyond this machine.',
    ...(LOOPBACK.test(o.host) ? [] : [`WARNING: listening on ${o.host}, not loopback.`]),
    '',
    `  issuer                    ${issuer}`,
    `  client                    ${o.clientId} (client_secret_basic; secret: ${o.secretFrom === 'random' ? 'random, below' : `from ${o.secretFrom === 'option' ? '--client-secret' : '$OIDC_CLIENT_SECRET'}`})`,
    `  redirect URIs             ${o.redirectUris.join(' ')}`,
    `  post-logout redirect URIs ${o.postLogoutRedirectUris.join(' ')}`,
    `  profile                   ${strict ? 'strict: a refresh token only for offline_access with prompt=consent, after a consent page' : 'lenient: a refresh token whenever offline_access is asked, no consent page'}`,
    `  access tokens live        ${o.accessTokenTtl} s`,
    '',
    'Paste into your Gatehouse config (routes.yaml):',
    '',
    'oidc:',
    `  issuer: ${yamlScalar(issuer)}`,
    `  clientId: ${yamlScalar(o.clientId)}`,
    '  clientSecret: ${OIDC_CLIENT_SECRET}',
    ...(strict
      ? ['  authorizationParams: { prompt: consent }   # OIDC Core §11: else no refresh token']
      : []),
    '',
    'and start Gatehouse where this is set:',
    '',
    `export OIDC_CLIENT_SECRET=${shellWord(o.clientSecret)}`,
    '',
    'Sign in at your Gatehouse URL with any user name. Ctrl-C stops the dev IdP.',
  ]
}

/** The module a "not found" error names as missing (not the one importing it), if it is one. */
function notFound(err: unknown): string | undefined {
  const { code, message } = (err ?? {}) as NodeJS.ErrnoException
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return undefined
  return /Cannot find (?:package|module) '([^']+)'/.exec(message ?? '')?.[1]
}

const DEV_IDP_FILE = /(^|[/\\])dev[/\\]idp\.(js|ts)$/

/** The one line for an installation without the dev IdP's parts, or undefined for any other failure. */
function missingPart(err: unknown): string | undefined {
  const missing = notFound(err)
  if (missing === undefined) return undefined
  const checkout =
    'run it from a Gatehouse checkout: npm ci && npm run dev-idp -- --client-id … --redirect-uri …'
  if (/^(oidc-provider|tsx)(\/|$)/.test(missing))
    return `gatehouse dev-idp is for development only and needs the oidc-provider and tsx packages, dev dependencies of Gatehouse that are not installed here: npm install --save-dev oidc-provider tsx, or ${checkout}`
  if (DEV_IDP_FILE.test(missing))
    return `gatehouse dev-idp is for development only and this installation does not include it (no dev/idp.ts): ${checkout}`
  return undefined
}

/**
 * dev/idp.ts sits two levels up from both src/cli and dist/cli. Under a
 * TypeScript loader (tsx, the tests') it imports as it is; the built CLI
 * has none, so tsx compiles it, when installed. The specifier is not a
 * literal so that the build, whose root is src/, does not compile dev/.
 */
async function loadDevIdp(): Promise<DevIdpModule> {
  const base = '../../dev/idp'
  try {
    return (await import(`${base}.js`)) as DevIdpModule
  } catch (err) {
    if (!DEV_IDP_FILE.test(notFound(err) ?? '')) throw err
  }
  const source = new URL(`${base}.ts`, import.meta.url)
  if (!existsSync(source))
    throw Object.assign(new Error(`Cannot find module '${fileURLToPath(source)}'`), {
      code: 'ERR_MODULE_NOT_FOUND',
    })
  const { tsImport } = await import('tsx/esm/api')
  return (await tsImport(source.href, import.meta.url)) as DevIdpModule
}

/** The command: returns its exit code; on success the IdP keeps the process alive. */
export async function devIdp(argv: readonly string[], io: DevIdpIO): Promise<number> {
  let o: Options | 'help'
  try {
    o = options(argv, io.env)
  } catch (err) {
    if (!(err instanceof Usage)) throw err
    io.stderr(`gatehouse dev-idp: ${err.message}\n\n${DEV_IDP_USAGE}`)
    return 2
  }
  if (o === 'help') {
    io.stdout(DEV_IDP_USAGE)
    return 0
  }
  let module: DevIdpModule
  try {
    module = await (io.load ?? loadDevIdp)()
  } catch (err) {
    const line = missingPart(err)
    if (line === undefined) throw err
    io.stderr(line)
    return 1
  }
  let idp: Awaited<ReturnType<DevIdpModule['startDevIdp']>>
  try {
    idp = await module.startDevIdp({
      profile: o.profile,
      port: o.port,
      host: o.host,
      accessTokenTtl: o.accessTokenTtl,
      clients: [
        {
          clientId: o.clientId,
          clientSecret: o.clientSecret,
          redirectUris: o.redirectUris,
          postLogoutRedirectUris: o.postLogoutRedirectUris,
        },
      ],
    })
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException
    io.stderr(
      code === 'EADDRINUSE'
        ? `gatehouse dev-idp: port ${o.port} is in use; choose another with --port, e.g. --port ${o.port + 10}`
        : `gatehouse dev-idp: could not start: ${message}`,
    )
    return 1
  }
  for (const line of devIdpBanner(idp.issuer, o)) io.stdout(line)
  if (io.handleSignals !== false) {
    const stop = () => {
      idp.close().then(
        () => process.exit(0),
        () => process.exit(1),
      )
    }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  }
  return 0
}
