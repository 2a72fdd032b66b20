/**
 * A LemonLDAP::NG portal (the Debian package, an OpenID Provider Gatehouse
 * did not write) owned by one test: its own config, session store and logs
 * in a temporary directory, its own FastCGI server and its own nginx on a
 * free loopback port. Nothing system-wide is read or started: the packaged
 * /etc/lemonldap-ng and /var/lib/lemonldap-ng are never used.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import * as oauth from 'oauth4webapi'
import {
  type CannedTokenAnswer,
  cannedTokenAnswer,
  type LemonLdapOptions,
  localIni,
  nginxConf,
  PORTAL_ROOT,
  portalConfig,
  signingKeys,
  TOKEN_ENDPOINT_CONF,
} from './lemonldap-config.js'
import { onFreePort } from './ports.js'

export type { CannedTokenAnswer, LemonLdapClient, LemonLdapOptions } from './lemonldap-config.js'

const run = promisify(execFile)

const FASTCGI_SERVER = '/usr/sbin/llng-fastcgi-server'
const SESSIONS_CLI = '/usr/share/lemonldap-ng/bin/lemonldap-ng-sessions'
const NGINX = process.env.NGINX ?? '/usr/sbin/nginx'

/**
 * What .ci/run installs for this lane. The last four are only recommended
 * by the Debian packages (apt-get installs them by default, .ci/run does not
 * install recommendations), yet the portal does not start without them: it
 * always loads its captcha (GD::SecurityImage with Image::Magick), and the
 * OIDC issuer needs String::Random and IO::String.
 */
export const LEMONLDAP_PACKAGES = [
  'lemonldap-ng',
  'lemonldap-ng-fastcgi-server',
  'nginx',
  'libgd-securityimage-perl',
  'libimage-magick-perl',
  'libstring-random-perl',
  'libio-string-perl',
] as const

/** The demo user backend's accounts: the password is the login. */
export const DEMO_USER = { login: 'dwho', password: 'dwho', name: 'Doctor Who' } as const

const PERL_MODULES = ['GD::SecurityImage', 'Image::Magick', 'String::Random', 'IO::String']

/** Why LemonLDAP::NG cannot run here, or `undefined` when it can. */
export function lemonLdapMissing(): string | undefined {
  const install = `run .ci/run, or apt-get install --no-install-recommends ${LEMONLDAP_PACKAGES.join(' ')}`
  const missing = [FASTCGI_SERVER, SESSIONS_CLI, join(PORTAL_ROOT, 'index.psgi'), NGINX].filter(
    (path) => !existsSync(path),
  )
  if (missing.length > 0) return `LemonLDAP::NG is not installed (${missing.join(', ')} missing); ${install}`
  try {
    execFileSync('perl', [...PERL_MODULES.map((m) => `-M${m}`), '-e', '1'], {
      stdio: 'ignore',
      timeout: 10_000,
    })
  } catch {
    return `LemonLDAP::NG's portal needs the Perl modules ${PERL_MODULES.join(', ')}; ${install}`
  }
  return undefined
}

/**
 * The `skip` option of a test that needs LemonLDAP::NG: the reason when it
 * is missing here, but never in CI, where .ci/run installs it and a missing
 * package must fail the lane rather than hide it.
 */
export function skipWithoutLemonLdap(): string | false {
  return process.env.CI === 'true' ? false : (lemonLdapMissing() ?? false)
}

/** One refresh token in the OP's session store, as an administrator sees it. */
export interface StoredRefreshToken {
  readonly id: string
  readonly user: string
  readonly clientId: string
}

export interface LemonLdap {
  /** The issuer identifier, `http://127.0.0.1:<port>/` (LL::NG's `portal`). */
  readonly issuer: string
  /** nginx's access log in front of the portal, one `METHOD /path status` a request, oldest first. */
  accessLog(): string[]
  /** The refresh tokens in the session store, found with LL::NG's own CLI. */
  refreshTokens(): Promise<StoredRefreshToken[]>
  /**
   * Has nginx answer every token request with `answer` in the portal's
   * place, or, with `undefined`, hand them back to the portal: the shapes a
   * proxy in front of an OP, or another OP, gives an error in, which
   * LemonLDAP::NG never does. Resolves once nginx answers so.
   */
  answerTokenRequests(answer: CannedTokenAnswer | undefined): Promise<void>
  /**
   * Replaces the OP's signing key with a new one under a new `kid`, as an
   * administrator rotating it in the manager does (LemonLDAP::NG 2.16
   * publishes one key: the old one leaves its JWKS at once). Resolves with
   * the new `kid` once every worker of the portal signs with it.
   */
  rotateSigningKey(): Promise<string>
  /** Deletes sessions from the store with LL::NG's own CLI, as an administrator would. */
  deleteSessions(ids: readonly string[]): Promise<void>
  /**
   * RFC 7662 introspection with the credentials of a second relying party,
   * `orders-api`, as a resource server would do it.
   */
  introspect(token: string): Promise<oauth.IntrospectionResponse>
  /**
   * The tail of the portal's and nginx's own logs, for a failing test's
   * message; LemonLDAP::NG names tokens by their session ids, elided here.
   */
  log(): string
  close(): Promise<void>
}

/** Runs as root in CI: the FastCGI server refuses root, so it and nginx's workers run as the package's user. */
const asRoot = process.getuid?.() === 0
const SERVICE_USER = 'www-data'

function serviceIds(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, SERVICE_USER], { encoding: 'utf8' }).trim())
  return { uid: id('-u'), gid: id('-g') }
}

function chownTree(path: string, ids: { uid: number; gid: number }): void {
  chownSync(path, ids.uid, ids.gid)
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name)
    if (entry.isDirectory()) chownTree(child, ids)
    else chownSync(child, ids.uid, ids.gid)
  }
}

/** A bounded tail of a child's output: enough to explain a failure, never growing without end. */
function tail(child: ChildProcess, into: { text: string }, name: string): void {
  const add = (chunk: Buffer) => {
    const lines = chunk
      .toString()
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => `[${name}] ${line}\n`)
    into.text = (into.text + lines.join('')).slice(-8_000)
  }
  child.stdout?.on('data', add)
  child.stderr?.on('data', add)
}

/**
 * Stops a child and its process group (it was spawned detached, so the
 * FastCGI manager's workers and nginx's go with it): SIGTERM, then SIGKILL
 * if it has not exited within 5 s. Resolves once it has exited.
 */
function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, name)
    } catch {}
  }
  return new Promise((resolve) => {
    const kill = setTimeout(() => signal('SIGKILL'), 5_000)
    child.once('exit', () => {
      clearTimeout(kill)
      resolve()
    })
    signal('SIGTERM')
  })
}

/** Polls the discovery document until the portal answers it: the readiness probe. */
async function untilDiscovered(issuer: string, failed: Promise<never>, deadlineMs = 30_000): Promise<void> {
  const url = new URL('.well-known/openid-configuration', issuer)
  const end = Date.now() + deadlineMs
  let last = 'no answer yet'
  const probe = async () => {
    while (Date.now() < end) {
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(5_000) })
        const body = await response.text()
        if (response.ok && (JSON.parse(body) as { issuer?: string }).issuer === issuer) return
        last = `${response.status} ${body.slice(0, 200)}`
      } catch (err) {
        last = (err as Error).message
      }
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new Error(`LemonLDAP::NG did not serve ${url} within ${deadlineMs} ms (last: ${last})`)
  }
  await Promise.race([failed, probe()])
}

/** The pids of the processes nginx's master process `pid` has started: its workers. */
function workersOf(pid: number): number[] {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
  return children.split(' ').filter(Boolean).map(Number)
}

/**
 * Resolves once `read()` has at least `lines` lines (bounded). nginx writes
 * a request's access-log line after it has sent the answer, so a client can
 * hold the answer before the line is there: on a loaded machine a test that
 * counted token requests right after `answerTokenRequests` counted its last
 * probe's line as the gateway's refresh.
 */
async function untilLogged(read: () => string[], lines: number): Promise<void> {
  const end = Date.now() + 10_000
  while (read().length < lines) {
    if (Date.now() > end) throw new Error(`nginx's access log has fewer than ${lines} lines after 10 s`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** Polls `url` until its body passes `check` (bounded). */
async function untilServed(url: URL, check: (body: string) => boolean): Promise<void> {
  const end = Date.now() + 10_000
  let last = 'no answer yet'
  while (Date.now() < end) {
    try {
      const body = await (await fetch(url, { signal: AbortSignal.timeout(5_000) })).text()
      if (check(body)) return
      last = body.slice(0, 200)
    } catch (err) {
      last = String((err as Error).cause ?? err)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`${url} did not serve what was awaited within 10 s (last: ${last})`)
}

/** Resolves once none of `pids` runs (bounded). */
async function untilExited(pids: readonly number[]): Promise<void> {
  const end = Date.now() + 10_000
  while (pids.some((pid) => existsSync(`/proc/${pid}`))) {
    if (Date.now() > end)
      throw new Error(`nginx's replaced workers (${pids.join(', ')}) still run after 10 s`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/**
 * Polls the token endpoint until nginx gives `canned`, or, with `undefined`,
 * until it no longer gives `previous`: the portal answers again. Resolves
 * with the number of probes answered, each of which nginx logs.
 */
async function untilTokenEndpoint(
  issuer: string,
  canned: CannedTokenAnswer | undefined,
  previous: CannedTokenAnswer | undefined,
): Promise<number> {
  const url = new URL('oauth2/token', issuer)
  const end = Date.now() + 10_000
  const gives = (answer: CannedTokenAnswer | undefined, status: number, body: string) =>
    answer !== undefined && status === answer.status && body === answer.body
  let last = 'no answer yet'
  let answered = 0
  while (Date.now() < end) {
    let response: Response
    let body: string
    try {
      response = await fetch(url, { method: 'POST', signal: AbortSignal.timeout(5_000) })
      body = await response.text()
      answered++
    } catch (err) {
      // The worker SIGHUP replaces closes the kept-alive connection this
      // loop's last request went on: a reset, then a new connection.
      last = String((err as Error).cause ?? err)
      await new Promise((r) => setTimeout(r, 50))
      continue
    }
    if (canned ? gives(canned, response.status, body) : !gives(previous, response.status, body))
      return answered
    last = `${response.status} ${body.slice(0, 200)}`
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(
    `nginx did not ${canned ? 'give the canned answer' : 'hand the token endpoint back'} within 10 s (last: ${last})`,
  )
}

/**
 * Starts LemonLDAP::NG for one test. Call `lemonLdapMissing()` first; this
 * throws with the portal's own log when it cannot start.
 */
export async function startLemonLdap(options: LemonLdapOptions): Promise<LemonLdap> {
  const why = lemonLdapMissing()
  if (why) throw new Error(why)
  // nginx reports a port taken between the probe and its bind as "Address
  // already in use", which onFreePort takes as a cue to pick another.
  return onFreePort((port) => startOn(port, options))
}

async function startOn(port: number, options: LemonLdapOptions): Promise<LemonLdap> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-lemonldap-'))
  const issuer = `http://127.0.0.1:${port}/`
  const rsSecret = randomBytes(16).toString('hex')
  for (const sub of ['conf', 'sessions/lock', 'nginx']) mkdirSync(join(dir, sub), { recursive: true })
  let config = portalConfig(dir, port, options, rsSecret)
  writeFileSync(join(dir, 'conf', 'lmConf-1.json'), JSON.stringify(config, null, 1))
  writeFileSync(join(dir, 'lemonldap-ng.ini'), localIni(dir))
  writeFileSync(join(dir, TOKEN_ENDPOINT_CONF), '')
  writeFileSync(join(dir, 'nginx.conf'), nginxConf(dir, port, asRoot ? SERVICE_USER : undefined))
  if (asRoot) chownTree(dir, serviceIds())

  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    LLNG_DEFAULTCONFFILE: join(dir, 'lemonldap-ng.ini'),
    LLNG_DEFAULTLOGGER: 'Lemonldap::NG::Common::Logger::Std',
  }
  const logs = { text: '' }
  const children: ChildProcess[] = []
  let nginx: ChildProcess | undefined
  let fastcgi: ChildProcess | undefined
  const failedToRun = (name: string, child: ChildProcess) =>
    new Promise<never>((_, reject) => {
      child.once('error', (err) => reject(new Error(`cannot start ${name}: ${err.message}`)))
      child.once('exit', (code, signal) =>
        reject(new Error(`${name} exited (${signal ?? code}) during start-up:\n${logs.text.slice(-3_000)}`)),
      )
    })

  const close = async () => {
    await Promise.all(children.map((child) => stop(child)))
    rmSync(dir, { recursive: true, force: true })
  }

  try {
    fastcgi = spawn(
      FASTCGI_SERVER,
      [
        '--foreground',
        ...(asRoot ? ['--user', SERVICE_USER, '--group', SERVICE_USER] : []),
        '--proc',
        '2',
        '--socket',
        join(dir, 'fastcgi.sock'),
        '--pid',
        join(dir, 'fastcgi.pid'),
      ],
      { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    children.push(fastcgi)
    tail(fastcgi, logs, 'lemonldap')
    nginx = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr'], {
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.push(nginx)
    tail(nginx, logs, 'nginx')
    const failed = Promise.race([failedToRun('llng-fastcgi-server', fastcgi!), failedToRun('nginx', nginx)])
    failed.catch(() => {})
    await untilDiscovered(issuer, failed)
  } catch (err) {
    await close()
    throw err
  }

  const cli = async (...args: string[]) => {
    const { stdout } = await run(
      SESSIONS_CLI,
      [...(asRoot ? ['--user', SERVICE_USER, '--group', SERVICE_USER] : []), ...args],
      { env, timeout: 30_000 },
    )
    return stdout
  }

  const as = await oauth.processDiscoveryResponse(
    new URL(issuer),
    await oauth.discoveryRequest(new URL(issuer), {
      [oauth.allowInsecureRequests]: true,
      signal: AbortSignal.timeout(5_000),
    }),
  )
  const resourceServer: oauth.Client = { client_id: 'orders-api' }

  let canned: CannedTokenAnswer | undefined
  const accessLog = () => {
    const file = join(dir, 'access.log')
    return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []
  }
  return {
    issuer,
    accessLog,
    async refreshTokens() {
      const out = await cli('search', '--where', '_type=refresh_token')
      const sessions = JSON.parse(out || '[]') as Record<string, unknown>[]
      return sessions.map((s) => ({
        id: String(s._session_id),
        user: String(s._session_uid ?? ''),
        clientId: String(s.client_id ?? ''),
      }))
    },
    async answerTokenRequests(answer) {
      writeFileSync(join(dir, TOKEN_ENDPOINT_CONF), answer ? cannedTokenAnswer(answer) : '')
      // SIGHUP: nginx reads its configuration again and replaces its worker.
      const replaced = workersOf(nginx!.pid!)
      const logged = accessLog().length
      process.kill(nginx!.pid!, 'SIGHUP')
      const probes = await untilTokenEndpoint(issuer, answer, canned)
      // The old worker serves the connections it holds, with the old
      // configuration, until its master tells it to quit, 100 ms after the
      // new one starts (ngx_process_cycle.c), and then finishes what it
      // took: the new one answered this loop's probes while the gateway's
      // connection kept alive from the sign-in took a refresh to the old
      // one and the portal behind it (a suite run: 200 and new tokens where
      // the canned refusal was due).
      await untilExited(replaced)
      // The probes' lines are in the log before the caller counts what follows.
      await untilLogged(accessLog, logged + probes)
      canned = answer
    },
    async rotateSigningKey() {
      const keys = signingKeys()
      config = {
        ...config,
        ...keys,
        cfgNum: config.cfgNum + 1,
        oidcServiceKeyIdSig: `gatehouse-test-${config.cfgNum + 1}`,
      }
      const file = join(dir, 'conf', `lmConf-${config.cfgNum}.json`)
      writeFileSync(file, JSON.stringify(config, null, 1))
      if (asRoot) {
        const ids = serviceIds()
        chownSync(file, ids.uid, ids.gid)
      }
      // SIGHUP: FCGI::ProcManager has each worker finish its request and
      // exit, and starts new ones, which read the newest configuration.
      const replaced = workersOf(fastcgi!.pid!)
      process.kill(fastcgi!.pid!, 'SIGHUP')
      await untilExited(replaced)
      const kid = config.oidcServiceKeyIdSig
      await untilServed(new URL('oauth2/jwks', issuer), (body) => body.includes(`"${kid}"`))
      return kid
    },
    async deleteSessions(ids) {
      if (ids.length > 0) await cli('delete', ...ids)
    },
    async introspect(token) {
      const response = await oauth.introspectionRequest(
        as,
        resourceServer,
        oauth.ClientSecretPost(rsSecret),
        token,
        { [oauth.allowInsecureRequests]: true, signal: AbortSignal.timeout(5_000) },
      )
      return oauth.processIntrospectionResponse(as, resourceServer, response)
    },
    log: () => logs.text.replace(/\b[0-9a-f]{32,}\b/g, '[id]'),
    close,
  }
}
