import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { stringify } from 'yaml'
import {
  type DevClient,
  type DevIdp,
  type DevIdpOptions,
  type DevResourceIndicators,
  startDevIdp,
} from '../../dev/idp.js'
import { type EchoUpstream, startEchoUpstream } from '../../dev/upstream.js'
import { loadConfigFile } from '../../src/config/load.js'
import { type RunningGateway, type StartOptions, start } from '../../src/server/start.js'
import { CLIENT_ID, CLIENT_SECRET, type TestConfigInput, testConfigRaw } from './gateway.js'
import { onFreePorts } from './ports.js'

/**
 * A directory laid out as the kubelet lays out a ConfigMap volume:
 * `routes.yaml` is a symlink to `..data/routes.yaml`, `..data` a symlink to
 * a timestamped directory. `write` updates it the kubelet's way: a new
 * directory, a `..data_tmp` symlink to it renamed over `..data` (one
 * atomic rename), and the old directory removed.
 */
export class ConfigMapDir {
  readonly dir = mkdtempSync(join(tmpdir(), 'gatehouse-configmap-'))
  readonly file = join(this.dir, 'routes.yaml')
  #version = 0
  #current: string | undefined

  constructor(text: string) {
    this.#publish(text)
    symlinkSync('..data/routes.yaml', this.file)
  }

  /** Swaps in new contents, as a ConfigMap update does. */
  write(text: string): void {
    const old = this.#current
    this.#publish(text)
    if (old) rmSync(join(this.dir, old), { recursive: true })
  }

  #publish(text: string): void {
    const name = `..2026_12_03_00_00_00.${++this.#version}`
    mkdirSync(join(this.dir, name))
    writeFileSync(join(this.dir, name, 'routes.yaml'), text)
    symlinkSync(name, join(this.dir, '..data_tmp'))
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'))
    this.#current = name
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** One JSON log line of the gateway. */
export interface LogLine {
  readonly level: number
  readonly msg: string
  readonly [field: string]: unknown
}

/** Long enough for any machine to log what a test waits for; a line that never comes fails, it does not hang. */
const LOG_BOUND_MS = 10_000

/** The gateway's log lines, parsed, and a way to wait for one: pass `stream` as `logStream`. */
export class LogLines {
  readonly lines: LogLine[] = []
  readonly #waiting = new Set<{ match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }>()
  readonly stream = {
    write: (text: string): void => {
      const line = JSON.parse(text) as LogLine
      this.lines.push(line)
      for (const waiter of this.#waiting) {
        if (!waiter.match(line)) continue
        this.#waiting.delete(waiter)
        waiter.resolve(line)
      }
    },
  }

  /**
   * The first line `match` accepts, logged already or still to come; rejects
   * naming `what` if none comes within `within` ms.
   */
  seen(what: string, match: (line: LogLine) => boolean, within: number = LOG_BOUND_MS): Promise<LogLine> {
    const found = this.lines.find(match)
    if (found) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (line: LogLine) => {
          clearTimeout(bound)
          resolve(line)
        },
      }
      const bound = setTimeout(() => {
        this.#waiting.delete(waiter)
        reject(new Error(`not logged within ${within} ms: ${what}`))
      }, within)
      this.#waiting.add(waiter)
    })
  }
}

/** The config file for `input`, as YAML a person would write, every option on its own line. */
export function configText(input: TestConfigInput): string {
  return stringify(testConfigRaw(input))
}

export interface Reloadable {
  readonly idp: DevIdp
  /** The second IdP, with `second` (`startReloadable`). */
  readonly second: DevIdp | undefined
  readonly upstream: EchoUpstream
  readonly running: RunningGateway
  readonly url: string
  readonly configMap: ConfigMapDir
  /** The config's input for this stack; pass it, changed, to `configText`. */
  readonly input: TestConfigInput
}

/**
 * A real IdP, an echo upstream, and a gateway started as the CLI starts it,
 * from a file in a ConfigMap-style directory that it watches. Everything
 * closes when `t` ends.
 */
export async function startReloadable(
  t: Test,
  routes: (upstream: string) => TestConfigInput['routes'],
  options: StartOptions & {
    readonly accessTokenTtl?: number
    /** The IdP's RFC 8707 resource servers; off when absent. */
    readonly resourceIndicators?: DevResourceIndicators
    /** More of the IdP's options (`dpopNonce`, ...). */
    readonly idp?: Partial<Omit<DevIdpOptions, 'clients' | 'accessTokenTtl' | 'resourceIndicators'>>
    /** Registration of the gateway's client beyond its id, secret and redirect URIs. */
    readonly client?: Partial<
      Omit<DevClient, 'clientId' | 'clientSecret' | 'redirectUris' | 'postLogoutRedirectUris'>
    >
    /** Config input over the defaults; a function of the IdPs' issuers where it names them. */
    readonly input?: Partial<TestConfigInput> | ((issuer: string, second: string) => Partial<TestConfigInput>)
    /**
     * A second real IdP, of its own issuer, with the gateway's client
     * registered at the same callbacks as the first (its options beyond them).
     */
    readonly second?: Partial<Omit<DevIdpOptions, 'clients'>>
    /** Runs once the config is loaded, before the gateway starts: what it writes lands while it starts. */
    readonly beforeStart?: (configMap: ConfigMapDir, input: TestConfigInput) => void
    /** Providers a later config adds, whose callbacks the IdP registers from the start. */
    readonly laterProviders?: readonly string[]
    /** The IdP sends its logout tokens to the gateway's back-channel logout endpoint. */
    readonly backchannelLogout?: boolean
  } = {},
): Promise<Reloadable> {
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  // Every provider the first config names signs in at its own address (callbackPath).
  const first = typeof options.input === 'function' ? options.input('', '') : options.input
  const providers = [
    ...(first?.identityProviders?.map((p) => p.name) ?? []),
    ...(options.laterProviders ?? []),
  ]
  const result = await onFreePorts(1, async ([port]) => {
    const url = `http://127.0.0.1:${port}`
    const client: DevClient = {
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      redirectUris: [`${url}/auth/callback`, ...providers.map((name) => `${url}/auth/callback/${name}`)],
      postLogoutRedirectUris: [`${url}/`],
      ...(options.backchannelLogout && { backchannelLogoutUri: `${url}/auth/backchannel-logout` }),
      ...options.client,
    }
    const idp = await startDevIdp({
      ...options.idp,
      accessTokenTtl: options.accessTokenTtl ?? 60,
      ...(options.resourceIndicators ? { resourceIndicators: options.resourceIndicators } : {}),
      clients: [client],
    })
    const second = options.second
      ? await startDevIdp({ accessTokenTtl: 60, ...options.second, clients: [client] }).catch(
          async (err: unknown) => {
            await idp.close()
            throw err
          },
        )
      : undefined
    const input: TestConfigInput = {
      port: port!,
      issuer: idp.issuer,
      routes: routes(upstream.url),
      publicUrl: url,
      ...(typeof options.input === 'function'
        ? options.input(idp.issuer, second?.issuer ?? '')
        : options.input),
    }
    const configMap = new ConfigMapDir(configText(input))
    try {
      // As the CLI does: the watch compares the file with the bytes loaded.
      const { config, digest } = loadConfigFile(configMap.file, {})
      options.beforeStart?.(configMap, input)
      const running = await start(config, {
        handleSignals: false,
        configFile: configMap.file,
        configDigest: digest,
        env: {},
        watch: { debounce: 50 },
        ...options,
      })
      await running.app.gatehouse.whenDiscovered()
      return { idp, second, upstream, running, url, configMap, input }
    } catch (err) {
      configMap.remove()
      await idp.close()
      await second?.close()
      throw err
    }
  })
  t.teardown(async () => {
    await result.running.close()
    await result.idp.close()
    await result.second?.close()
    result.configMap.remove()
  })
  return result
}

/**
 * A fault no real peer can be made to show: a step of the next swap that
 * may fail (reload-swap.ts `prepareSwap`) fails, once, before anything changed.
 */
export function refuseOnceInTheSwap(running: RunningGateway): void {
  const certificates = running.app.gatehouse.lasting.certificates
  const prepare = certificates.prepare.bind(certificates)
  let faults = 1
  certificates.prepare = (config) => {
    if (faults-- > 0) throw new Error('injected fault in the swap')
    return prepare(config)
  }
}

/**
 * A fault the reloader does not foresee: a step of the next swap that
 * cannot fail throws, once, with part of the lasting state applied.
 */
export function faultOnceInTheSwap(running: RunningGateway): void {
  const refusals = running.app.gatehouse.lasting.refusals
  const keepOnly = refusals.keepOnly.bind(refusals)
  let faults = 1
  refusals.keepOnly = (names) => {
    if (faults-- > 0) throw new Error('injected fault in the swap')
    keepOnly(names)
  }
}
