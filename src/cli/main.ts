import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { ConfigError, formatProblem, MAX_PROBLEM_LINES, unlistedProblems } from '../config/errors.js'
import { type LoadedConfig, loadConfigFile } from '../config/load.js'
import { redirectUris } from '../config/redirect-uris.js'
import type { GatehouseConfig } from '../config/types.js'
import { type ListenAddress, listenAddress } from './listen-address.js'

export interface CliIO {
  readonly stdout: (line: string) => void
  readonly stderr: (line: string) => void
  readonly env: NodeJS.ProcessEnv
  /**
   * Runs the gateway on the config read from `file`, which it reloads on
   * SIGHUP and when it changes (`digest` names the bytes `config` was read
   * from); resolves once it listens. Injected so tests need not start one.
   */
  readonly start: (config: GatehouseConfig, file: string, digest: string) => Promise<unknown>
  /**
   * Called for `start` before the config is read: from then on a SIGHUP
   * must ask for a reload, not end the process by its default action.
   */
  readonly starting?: () => void
}

const USAGE = `Usage: gatehouse <command> [--config FILE]

Commands:
  start    Run the gateway.
  check    Validate the config file without touching the network, and print the
           redirect URI to register at each identity provider.
           With --online, also compare the config with what the IdP's
           discovery document advertises; exit 1 on a blocking mismatch.
  health   Probe /healthz on the configured port (the container's HEALTHCHECK).
  dev-idp  Start a DEVELOPMENT-ONLY OpenID Provider with your client registered,
           and print the oidc: block to paste (gatehouse dev-idp --help).

Options:
  -c, --config FILE   Config file (default: $GATEHOUSE_CONFIG, else ./routes.yaml)
      --online        check: run discovery against oidc.issuer.
  -h, --help          Show this help.
  -v, --version       Show the version.
`

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}

/** The CLI as a function of argv, returning the exit code. It never prints a stack trace. */
export async function main(argv: readonly string[], io: CliIO): Promise<number> {
  try {
    return await run(argv, io)
  } catch (err) {
    // A bug or a broken install, not a user error: still one line, not a stack.
    io.stderr(`gatehouse: unexpected error: ${err instanceof Error ? err.message : String(err)}`)
    return 2
  }
}

async function run(argv: readonly string[], io: CliIO): Promise<number> {
  if (argv[0] === 'dev-idp') {
    // Options of its own and no config file; loaded only when asked for.
    const { devIdp } = await import('./dev-idp.js')
    return devIdp(argv.slice(1), io)
  }
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse(argv)
  } catch (err) {
    io.stderr(`gatehouse: ${(err as Error).message}\n\n${USAGE}`)
    return 2
  }
  const { values, positionals } = parsed
  if (values.version) {
    io.stdout(version())
    return 0
  }
  const command = positionals[0]
  if (values.help || command === 'help') {
    io.stdout(USAGE)
    return 0
  }
  if (command !== 'start' && command !== 'check' && command !== 'health') {
    io.stderr(
      `gatehouse: ${command === undefined ? 'no command given' : `unknown command "${command}"`}\n\n${USAGE}`,
    )
    return 2
  }
  // `gatehouse check routes.yaml` once checked ./routes.yaml, whatever the
  // file named: an OK for a file that was never read.
  const extra = positionals[1]
  if (extra !== undefined) {
    io.stderr(
      `gatehouse: unexpected argument "${extra}"${extra.endsWith('.yaml') || extra.endsWith('.yml') ? ` (the config file goes after --config: gatehouse ${command} --config ${extra})` : ''}\n\n${USAGE}`,
    )
    return 2
  }
  // Else ignored: a start meant to be checked against the IdP went up unchecked.
  if (values.online && command !== 'check') {
    io.stderr(`gatehouse: --online applies to check only (gatehouse check --online)\n\n${USAGE}`)
    return 2
  }
  // Else the last won without a word: a wrapper's own --config and the
  // operator's, and only one of them was read.
  const configs = values.config ?? []
  if (configs.length > 1) {
    io.stderr(
      `gatehouse: --config was given ${configs.length} times (${configs.join(', ')}): give one config file\n\n${USAGE}`,
    )
    return 2
  }
  const given = configs[0]
  // An empty name is no file: read, it was "cannot read the config file",
  // naming none, nor where the empty name came from.
  const empty =
    given === ''
      ? '--config was given an empty file name'
      : given === undefined && io.env.GATEHOUSE_CONFIG === ''
        ? 'GATEHOUSE_CONFIG is set but empty: set it to the config file, or unset it to read ./routes.yaml'
        : undefined
  if (empty !== undefined) {
    io.stderr(`gatehouse: ${empty}\n\n${USAGE}`)
    return 2
  }
  const file = given ?? io.env.GATEHOUSE_CONFIG ?? './routes.yaml'
  if (command === 'health') return health(file, io)
  if (command === 'start') io.starting?.()
  let loaded: LoadedConfig
  try {
    loaded = loadConfigFile(file, io.env, {
      onWarning: (warning) => io.stderr(`warning: ${formatProblem(file, warning)}`),
    })
  } catch (err) {
    // `check` is where every problem is listed; a start's go to the log, once per restart of a crash loop.
    return unreadable(file, err, io, command === 'start' ? MAX_PROBLEM_LINES : Number.POSITIVE_INFINITY)
  }
  const { config } = loaded
  if (command === 'check') {
    io.stdout(`OK: ${file} (${config.routes.length} route${config.routes.length === 1 ? '' : 's'})`)
    // What to register at the providers: a move from `oidc:` to
    // `identityProviders:` changes it (src/config/redirect-uris.ts).
    for (const [name, uris] of Object.entries(redirectUris(config))) {
      // None for a provider no frontend signs in with; its warning says so.
      if (uris.length === 0) continue
      io.stdout(`redirect URI${uris.length === 1 ? '' : 's'} to register at ${name}: ${uris.join(' ')}`)
    }
    if (!values.online) return 0
    // Loaded only here: offline check never touches the network code.
    const { checkOnline } = await import('./check-online.js')
    return checkOnline(config, io)
  }
  try {
    await io.start(config, file, loaded.digest)
    return 0
  } catch (err) {
    io.stderr(`gatehouse: could not start: ${(err as Error).message}`)
    return 1
  }
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      // Gathered, not overwritten: a second one is refused, never silently preferred.
      config: { type: 'string', short: 'c', multiple: true },
      online: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  })
}

/**
 * Probes the running gateway's `/healthz`. Quiet on success and on config
 * warnings: it runs every few seconds, and its output is not the place.
 */
async function health(file: string, io: CliIO): Promise<number> {
  let server: ListenAddress
  try {
    server = listenAddress(file, io.env)
  } catch (err) {
    return unreadable(file, err, io)
  }
  const { healthVerdict, probeHealth } = await import('./health.js')
  const probed = await probeHealth(server)
  if (probed.problem === undefined) {
    io.stdout(healthVerdict(probed))
    return 0
  }
  io.stderr(`gatehouse: ${healthVerdict(probed)}`)
  return 1
}

/** Reports a config that could not be loaded, its first `lines` problems; the exit code. */
function unreadable(file: string, err: unknown, io: CliIO, lines = Number.POSITIVE_INFINITY): number {
  if (err instanceof ConfigError) {
    for (const problem of err.problems.slice(0, lines)) io.stderr(formatProblem(file, problem))
    const unlisted = err.problems.length > lines ? unlistedProblems(file, err.problems.length) : undefined
    if (unlisted !== undefined) io.stderr(unlisted)
    io.stderr(`gatehouse: ${file} has ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}`)
    return 1
  }
  io.stderr(`gatehouse: could not read ${file}: ${(err as Error).message}`)
  return 1
}
