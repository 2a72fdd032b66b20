/**
 * A Glewlwyd 2.7 (the Debian package, an OpenID Provider Gatehouse did not
 * write) owned by one test: its own config file, an sqlite3 database made
 * from the package's own SQL, and its log, in a temporary directory, on a
 * free loopback port. Nothing system-wide is read, written or started: the
 * packaged /etc/glewlwyd and its service are never used. Everything past
 * the database's defaults (the OIDC plugin, the client, the user) is set up
 * through Glewlwyd's admin REST API, as its documentation does it.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CookieJar } from './cookie-jar.js'
import { jarFetch } from './login.js'
import { addressInUse, onFreePort } from './ports.js'

/** What .ci/run installs for this lane. */
export const GLEWLWYD_PACKAGES = ['glewlwyd'] as const

const BINARY = process.env.GLEWLWYD ?? '/usr/bin/glewlwyd'
/** The schema and defaults dbconfig-common would load, with the package's `admin`/`password` administrator. */
const SQLITE_INIT = '/usr/share/dbconfig-common/data/glewlwyd/install/sqlite3'
const MODULES = '/usr/lib/glewlwyd'
const ADMIN = { username: 'admin', password: 'password' } as const
/** The plugin instance's name: its endpoints are under `/api/<name>/`. */
const PLUGIN = 'oidc'

/** Why Glewlwyd cannot run here, or `undefined` when it can. */
export function glewlwydMissing(): string | undefined {
  const missing = [BINARY, SQLITE_INIT, join(MODULES, 'plugin', 'libprotocol_oidc.so')].filter(
    (path) => !existsSync(path),
  )
  if (missing.length === 0) return undefined
  return `Glewlwyd is not installed (${missing.join(', ')} missing); run .ci/run, or apt-get install --no-install-recommends ${GLEWLWYD_PACKAGES.join(' ')}`
}

/**
 * The `skip` option of a test that needs Glewlwyd: the reason when it is
 * missing here, but never in CI, where .ci/run installs it and a missing
 * package must fail the lane rather than hide it.
 */
export function skipWithoutGlewlwyd(): string | false {
  return process.env.CI === 'true' ? false : (glewlwydMissing() ?? false)
}

export interface GlewlwydOptions {
  readonly clientId: string
  readonly clientSecret: string
  readonly redirectUris: readonly string[]
  readonly postLogoutRedirectUri: string
  /**
   * The client's `backchannel_logout_uri` (Back-Channel Logout 1.0 §2.2),
   * with `backchannel_logout_session_required` on: Glewlwyd then puts the
   * session's `sid` in the logout token.
   */
  readonly backchannelLogoutUri?: string
  /** Seconds. */
  readonly accessTokenTtl: number
}

export interface GlewlwydUser {
  readonly username: string
  readonly password: string
  readonly name: string
}

/** How Glewlwyd answered an end-session request, and where its page then sent the browser. */
export interface EndSession {
  /** The end-session endpoint's status. */
  readonly status: number
  /** The login page's `prompt`: `end_session` for a request Glewlwyd took. */
  readonly prompt: string | undefined
  /** Where the page sends the browser once the session has ended; `undefined` when it keeps it. */
  readonly backTo: string | undefined
}

/** One refresh token in Glewlwyd's database, as an administrator sees it. */
export interface StoredRefreshToken {
  readonly id: number
  readonly user: string
  readonly clientId: string
  readonly enabled: boolean
}

export interface Glewlwyd {
  /** The issuer identifier, `http://127.0.0.1:<port>/api/oidc`. */
  readonly issuer: string
  /** The user the test signs in as, with Glewlwyd's password scheme. */
  readonly user: GlewlwydUser
  /**
   * Walks Glewlwyd's login from an authorization URL as its login page
   * does: the password at `/api/auth/`, the consent at
   * `/api/auth/grant/<client>`, then back to the authorization endpoint
   * with `g_continue`. Returns the first redirect that leaves Glewlwyd.
   */
  signIn(jar: CookieJar, authorizationUrl: string): Promise<string>
  /**
   * Follows an RP-Initiated Logout request (a GET of the end-session
   * endpoint) and, when Glewlwyd answers with its end-session prompt, does
   * what its login page does once the user confirms it: asks for the
   * session's front-channel clients, then `confirmEndSession`.
   */
  endSession(jar: CookieJar, endSessionUrl: string): Promise<EndSession>
  /**
   * What Glewlwyd's login page does once the user confirms the end of the
   * OIDC session `sid`: `DELETE /api/oidc/session/<sid>`, which sends a
   * logout token to each client of the session with a
   * `backchannel_logout_uri` and disables the session's tokens, then
   * `DELETE /api/auth/`, which signs the user out of Glewlwyd. Nothing else
   * in Glewlwyd 2.7 sends logout tokens: not its profile page's logout, nor
   * an administrator ending the user's sessions.
   */
  confirmEndSession(jar: CookieJar, sid: string): Promise<void>
  /**
   * Sets the client's `backchannel_logout_session_required`: off, as a
   * client registered without it is, Glewlwyd's logout tokens name the user
   * (`sub`) alone.
   */
  requireSessionInLogoutTokens(required: boolean): Promise<void>
  /**
   * Stops Glewlwyd and starts it again on the same port, database and
   * keys, as a package upgrade or a host's reboot does; resolves once it
   * answers again.
   */
  restart(): Promise<void>
  /** Whether the browser holding `jar` is signed in at Glewlwyd (its login page would not ask for credentials). */
  signedIn(jar: CookieJar): Promise<boolean>
  /** Glewlwyd's log lines, oldest first. */
  logLines(): string[]
  /** Tokens Glewlwyd issued to the client (the code's, and one per refresh grant), from its log. */
  accessTokensIssued(): number
  /** The refresh tokens in Glewlwyd's database. */
  refreshTokens(): StoredRefreshToken[]
  /** Disables every refresh token in Glewlwyd's database, as an administrator revoking a user's sessions does. */
  disableRefreshTokens(): void
  /** RFC 7662 introspection with the client's own credentials, as a resource server sharing it would. */
  introspect(token: string): Promise<Record<string, unknown>>
  /** The tail of the log, for a failing test's message. */
  log(): string
  close(): Promise<void>
}

/**
 * Stops the child: SIGTERM, then SIGKILL if it has not exited within 5 s.
 * Resolves once it has exited.
 */
function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5_000)
    child.once('exit', () => {
      clearTimeout(kill)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

/** libconfig's syntax for Glewlwyd's own config file: only what this test needs. */
function configFile(dir: string, port: number): string {
  const string = (value: string) => JSON.stringify(value)
  return `port=${port}
bind_address="127.0.0.1"
external_url=${string(`http://127.0.0.1:${port}`)}
login_url="login.html"
static_files_path="/usr/share/glewlwyd/webapp/"
api_prefix="api"
allow_origin="*"
log_mode="file"
log_level="INFO"
log_file=${string(join(dir, 'glewlwyd.log'))}
cookie_secure=0
session_expiration=3600
session_key="GLEWLWYD2_SESSION_ID"
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path=${string(join(MODULES, 'user'))}
client_module_path=${string(join(MODULES, 'client'))}
user_auth_scheme_module_path=${string(join(MODULES, 'scheme'))}
plugin_module_path=${string(join(MODULES, 'plugin'))}
# Glewlwyd 2.7 refuses to start without both files named, even off.
use_secure_connection=false
secure_connection_key_file=${string(join(dir, 'unused.key'))}
secure_connection_pem_file=${string(join(dir, 'unused.pem'))}
hash_algorithm="SHA512"
database = { type = "sqlite3" path = ${string(join(dir, 'glewlwyd.db'))} };
`
}

/** The OIDC plugin's parameters: those its admin page sends for a new instance, changed where said. */
function pluginParameters(issuer: string, accessTokenTtl: number): Record<string, unknown> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'glewlwyd-test', alg: 'RS256', use: 'sig' }
  return {
    iss: issuer,
    'jwks-private': JSON.stringify({ keys: [jwk] }),
    'default-kid': 'glewlwyd-test',
    'jwks-show': true,
    'access-token-duration': accessTokenTtl,
    'refresh-token-duration': 3600,
    'code-duration': 600,
    'refresh-token-rolling': true,
    // RFC 9700 §4.14.2: every refresh grant rotates the refresh token.
    'refresh-token-one-use': 'always',
    'client-refresh-token-one-use-parameter': 'refresh-token-one-use',
    'allow-non-oidc': false,
    'auth-type-code-enabled': true,
    'auth-type-refresh-enabled': true,
    'auth-type-code-revoke-replayed': true,
    'auth-type-token-enabled': false,
    'auth-type-id-token-enabled': false,
    'auth-type-none-enabled': false,
    'auth-type-password-enabled': false,
    'auth-type-client-enabled': false,
    'auth-type-device-enabled': false,
    'allowed-scope': ['openid'],
    scope: [],
    claims: [],
    'additional-parameters': [],
    'service-documentation': '',
    'secret-type': 'pairwise',
    // Its default, on-demand, sends the name only when asked by the claims parameter (OIDC Core
    // §5.5), which Gatehouse does not send; the `profile` scope, which it does, Glewlwyd drops.
    'name-claim': 'mandatory',
    'email-claim': 'no',
    'scope-claim': 'no',
    'address-claim': { type: 'no' },
    'pkce-allowed': true,
    'pkce-method-plain-allowed': false,
    // Revocation (RFC 7009) and introspection (RFC 7662) for the client a token was issued to.
    'introspection-revocation-allowed': true,
    'introspection-revocation-auth-scope': [],
    'introspection-revocation-allow-target-client': true,
    'session-management-allowed': true,
    'session-cookie-name': 'GLEWLWYD2_OIDC_SID',
    'session-cookie-expiration': 3600,
    // Its end-session page lists the session's front-channel clients first, and that list
    // answers 400 with front-channel logout off: the page's logout button then throws.
    'front-channel-logout-allowed': true,
    // Logout tokens, sent to each client of the session when it is ended through the end-session flow.
    'back-channel-logout-allowed': true,
    'oauth-par-allowed': true,
    'oauth-par-required': false,
    'oauth-par-duration': 90,
    'oauth-par-request_uri-prefix': 'urn:ietf:params:oauth:request_uri:',
    'oauth-dpop-allowed': true,
    'oauth-dpop-iat-duration': 10,
  }
}

/**
 * Starts Glewlwyd for one test. Call `glewlwydMissing()` first; this throws
 * with Glewlwyd's own log when it cannot start.
 */
export function startGlewlwyd(options: GlewlwydOptions): Promise<Glewlwyd> {
  const why = glewlwydMissing()
  if (why) throw new Error(why)
  return onFreePort((port) => startOn(port, options))
}

async function startOn(port: number, options: GlewlwydOptions): Promise<Glewlwyd> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-glewlwyd-'))
  const base = `http://127.0.0.1:${port}`
  const issuer = `${base}/api/${PLUGIN}`
  const logFile = join(dir, 'glewlwyd.log')
  // Loaded here, not at the top: Node 22 before 22.13 has node:sqlite only
  // behind a flag, and the lane must still load there to be skipped.
  const { DatabaseSync } = await import('node:sqlite')
  const db = new DatabaseSync(join(dir, 'glewlwyd.db'))
  db.exec(readFileSync(SQLITE_INIT, 'utf8'))
  writeFileSync(join(dir, 'glewlwyd.conf'), configFile(dir, port))

  const logLines = () =>
    existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean) : []
  const log = () => logLines().slice(-40).join('\n')
  let child: ChildProcess | undefined
  let stderr = ''
  /** Starts the binary; the promise rejects, with Glewlwyd's log, if it exits. */
  const launch = (): Promise<never> => {
    stderr = ''
    const started = spawn(BINARY, ['-c', join(dir, 'glewlwyd.conf')], { stdio: ['ignore', 'ignore', 'pipe'] })
    started.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4_000)
    })
    child = started
    const exited = new Promise<never>((_, reject) => {
      started.once('error', (err) => reject(new Error(`cannot start glewlwyd: ${err.message}`)))
      started.once('exit', (code, signal) => {
        const text = `${stderr}\n${log()}`
        const message = `glewlwyd exited (${signal ?? code}) during start-up:\n${text.slice(-3_000)}`
        reject(/address already in use/i.test(text) ? addressInUse(message) : new Error(message))
      })
    })
    exited.catch(() => {})
    return exited
  }
  const close = async () => {
    if (child) await stop(child)
    db.close()
    rmSync(dir, { recursive: true, force: true })
  }

  const admin = new CookieJar()
  const call = async (jar: CookieJar, method: string, path: string, body?: unknown) => {
    return jarFetch(jar, `${base}${path}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      headers: { 'content-type': 'application/json' },
      signal: AbortSignal.timeout(5_000),
    })
  }
  const must = async (jar: CookieJar, method: string, path: string, body?: unknown) => {
    const response = await call(jar, method, path, body)
    if (response.status !== 200)
      throw new Error(`Glewlwyd answered ${method} ${path} with ${response.status} ${response.text}`)
    return response
  }
  const client = {
    client_id: options.clientId,
    name: 'Gatehouse',
    confidential: true,
    password: options.clientSecret,
    redirect_uri: options.redirectUris,
    // One value in the package's client schema (data-format: multiple false). Its
    // end-session endpoint reads `post_logout_redirect_uris` instead (docs/identity-providers.md).
    post_logout_redirect_uri: options.postLogoutRedirectUri,
    ...(options.backchannelLogoutUri
      ? { backchannel_logout_uri: options.backchannelLogoutUri, backchannel_logout_session_required: 'true' }
      : {}),
    authorization_type: ['code', 'refresh_token', 'delete_token'],
    token_endpoint_auth_method: ['client_secret_basic', 'client_secret_post'],
    scope: [],
    enabled: true,
  }
  /** Resolves once the administrator's sign-in answers: Glewlwyd listens. */
  const ready = async (exited: Promise<never>) => {
    const end = Date.now() + 20_000
    const signedIn = (async () => {
      for (;;) {
        try {
          if ((await call(admin, 'POST', '/api/auth/', ADMIN)).status === 200) return
        } catch {}
        if (Date.now() > end) throw new Error(`Glewlwyd did not answer within 20 s:\n${log()}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    })()
    await Promise.race([exited, signedIn])
  }
  const user: GlewlwydUser = {
    username: 'alice',
    password: randomBytes(12).toString('base64url'),
    name: 'Alice Liddell',
  }

  try {
    await ready(launch())
    await must(admin, 'POST', '/api/mod/plugin/', {
      module: 'oidc',
      name: PLUGIN,
      display_name: 'OpenID Connect',
      enabled: true,
      parameters: pluginParameters(issuer, options.accessTokenTtl),
    })
    // The package's `openid` scope asks for no factor; Gatehouse's user signs in with a password.
    await must(admin, 'PUT', '/api/scope/openid', {
      name: 'openid',
      display_name: 'Open ID',
      description: 'OpenID Connect',
      password_required: true,
      password_max_age: 0,
      scheme: {},
    })
    await must(admin, 'POST', '/api/client/', client)
    await must(admin, 'POST', '/api/user/', {
      username: user.username,
      name: user.name,
      password: user.password,
      scope: ['openid'],
      enabled: true,
    })
    await must(new CookieJar(), 'GET', `/api/${PLUGIN}/.well-known/openid-configuration`)
  } catch (err) {
    await close()
    throw err
  }

  const confirmEndSession = async (jar: CookieJar, sid: string) => {
    await must(jar, 'DELETE', `/api/${PLUGIN}/session/${encodeURIComponent(sid)}`)
    await must(jar, 'DELETE', '/api/auth/')
  }
  const clientAuth = `Basic ${Buffer.from(`${options.clientId}:${options.clientSecret}`).toString('base64')}`
  return {
    issuer,
    user,
    async signIn(jar, authorizationUrl) {
      const first = await jarFetch(jar, authorizationUrl)
      if (!first.location)
        throw new Error(`Glewlwyd's authorization endpoint answered ${first.status} ${first.text}`)
      const login = new URL(first.location)
      if (login.origin !== base) return first.location
      // What login.html does: the password, then the consent, then back.
      await must(jar, 'POST', '/api/auth/', { username: user.username, password: user.password })
      const scope = login.searchParams.get('scope') ?? 'openid'
      await must(jar, 'PUT', `/api/auth/grant/${encodeURIComponent(options.clientId)}`, { scope })
      const back = new URL(login.searchParams.get('callback_url') ?? '')
      back.searchParams.set('g_continue', '')
      const answer = await jarFetch(jar, back.href)
      if (!answer.location)
        throw new Error(`Glewlwyd's authorization endpoint answered ${answer.status} ${answer.text}`)
      return answer.location
    },
    async endSession(jar, endSessionUrl) {
      const first = await jarFetch(jar, endSessionUrl)
      const page = first.location ? new URL(first.location, base) : undefined
      const params = page?.searchParams
      const sid = params?.get('sid')
      const clientId = params?.get('client_id')
      if (!page || params?.get('prompt') !== 'end_session' || !sid || !clientId)
        return { status: first.status, prompt: params?.get('prompt') ?? undefined, backTo: undefined }
      const postRedirectTo = params!.get('post_redirect_to')
      const query = postRedirectTo ? `?post_redirect_to=${encodeURIComponent(postRedirectTo)}` : ''
      const session = await must(
        jar,
        'GET',
        `/api/${PLUGIN}/session/${encodeURIComponent(sid)}/${encodeURIComponent(clientId)}${query}`,
      )
      await confirmEndSession(jar, sid)
      // The page goes back to callback_url only when the session's answer says the client may be returned to.
      const backTo = session.json<{ post_redirect_to?: string }>().post_redirect_to
        ? (params!.get('callback_url') ?? undefined)
        : undefined
      return { status: first.status, prompt: 'end_session', backTo }
    },
    confirmEndSession,
    async requireSessionInLogoutTokens(required) {
      // The admin API replaces a client whole: every property is sent again.
      await must(admin, 'PUT', `/api/client/${encodeURIComponent(options.clientId)}`, {
        ...client,
        backchannel_logout_session_required: String(required),
      })
    },
    async restart() {
      if (child) await stop(child)
      await ready(launch())
    },
    async signedIn(jar) {
      const response = await call(jar, 'GET', '/api/profile_list/')
      if (response.status !== 200 && response.status !== 401)
        throw new Error(`Glewlwyd answered GET /api/profile_list/ with ${response.status} ${response.text}`)
      return response.status === 200
    },
    logLines,
    accessTokensIssued: () =>
      logLines().filter((line) =>
        line.includes(`Access token generated for client '${options.clientId}' granted by user`),
      ).length,
    refreshTokens: () =>
      (
        db
          .prepare('SELECT gpor_id, gpor_username, gpor_client_id, gpor_enabled FROM gpo_refresh_token')
          .all() as { gpor_id: number; gpor_username: string; gpor_client_id: string; gpor_enabled: number }[]
      ).map((row) => ({
        id: row.gpor_id,
        user: row.gpor_username,
        clientId: row.gpor_client_id,
        enabled: row.gpor_enabled === 1,
      })),
    disableRefreshTokens() {
      db.exec('UPDATE gpo_refresh_token SET gpor_enabled = 0')
    },
    async introspect(token) {
      const response = await fetch(`${issuer}/introspect`, {
        method: 'POST',
        headers: { authorization: clientAuth, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token }),
        signal: AbortSignal.timeout(5_000),
      })
      if (response.status !== 200) throw new Error(`introspection answered ${response.status}`)
      return (await response.json()) as Record<string, unknown>
    },
    log,
    close,
  }
}
