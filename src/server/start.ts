import type { FastifyInstance } from 'fastify'
import { redirectUris } from '../config/redirect-uris.js'
import type { GatehouseConfig } from '../config/types.js'
import { type ConfigWatch, watchConfigFile } from '../config/watch.js'
import type { LogCode } from '../errors.js'
import { buildGateway, type GatewayOptions } from './gateway.js'
import { HeldHangups } from './hangups.js'
import { GatewayListener, mount } from './listener.js'
import { metricsListener } from './metrics-listener.js'
import { ConfigReloader, type ReloadResult } from './reload.js'
import type { ReloadCheckLimits, StartCheckThread } from './reload-check.js'
import { RELOAD_READ_TIMEOUT, type ReloadRead } from './reload-read.js'
import type { ReloadRetry } from './reload-retry.js'

export interface RunningGateway {
  /** The app new requests go to: that of the config loaded last. */
  readonly app: FastifyInstance
  /** The config new requests run on. */
  readonly config: GatehouseConfig
  /** The address it listens on, e.g. `http://127.0.0.1:3000`. */
  readonly url: string
  /** Where Prometheus scrapes, e.g. `http://127.0.0.1:9464/metrics`; undefined with metrics off. */
  readonly metricsUrl: string | undefined
  /**
   * Reads the config file again and applies it, as SIGHUP does; rejected
   * (and the running config kept) without `configFile`.
   */
  reload(): Promise<ReloadResult>
  close(): Promise<void>
}

export interface StartOptions extends GatewayOptions {
  /** Install SIGTERM/SIGINT handlers that drain and exit, and SIGHUP to reload. Default true. */
  readonly handleSignals?: boolean
  /** Longest wait for requests in flight on shutdown, ms; default the running config's `server.drainTimeout`. */
  readonly drainTimeout?: number
  /** The file `config` was read from: reloaded on SIGHUP and when it changes. */
  readonly configFile?: string
  /**
   * The digest of the bytes `config` was read from (`loadConfigFile`): the
   * watch compares the file with it when it starts, so a change made while
   * the gateway was starting is applied. Without it, the file as the watch
   * first finds it is taken to be `config`.
   */
  readonly configDigest?: string
  /** The environment the file's `${VAR}`s are read from on reload; default `process.env`. */
  readonly env?: NodeJS.ProcessEnv
  /**
   * Reload when `configFile` changes (default true), and how long its
   * directory must be quiet first, ms; `read`, how the watch reads the
   * file, is for tests only (a stalled mount is a fault no real file here shows).
   */
  readonly watch?: boolean | { readonly debounce: number; readonly read?: (file: string) => Promise<Buffer> }
  /** How a reload refused for a reason not in the file is retried; default `DEFAULT_RELOAD_RETRY`. */
  readonly reloadRetry?: ReloadRetry
  /** How a reload reads the file; tests only (reload-read.ts `ReloadRead`). */
  readonly reloadRead?: ReloadRead
  /**
   * Bounds on the thread a large file is checked on; tests only, for a
   * check that a loaded machine may slow past the default's 30 s.
   */
  readonly reloadCheck?: ReloadCheckLimits
  /** How that thread is started; tests only (reload-check.ts `StartCheckThread`). */
  readonly reloadCheckThread?: StartCheckThread
  /**
   * SIGHUPs the caller has held since before it read the config (the CLI
   * does); without it, `start` holds them from its first line. One that
   * came is answered by a reload once the gateway listens.
   */
  readonly hangups?: HeldHangups
}

/**
 * Builds the gateway, listens, and owns its lifecycle. SIGHUP, or a change
 * of `configFile`, reloads the config without a restart (reload.ts); a
 * SIGHUP while it starts is held, and answered once it listens. On
 * SIGTERM or SIGINT it stops accepting connections, lets requests in
 * flight finish for up to `server.drainTimeout`, closes the stores and exits 0.
 * A second signal forces exit.
 */
export async function start(config: GatehouseConfig, options: StartOptions = {}): Promise<RunningGateway> {
  const handleSignals = options.handleSignals !== false
  // Building and listening takes a while, and a SIGHUP meanwhile would end
  // the process by its default action: it is held until there is a reloader.
  const held = options.hangups ?? (handleSignals ? new HeldHangups() : undefined)
  const first = mount()
  const app = await buildGateway(config, {
    ...options,
    serverFactory: first.serverFactory,
    // The first app is retired by the first reload; what it made outlives it.
    keepLasting: true,
  }).catch((err: unknown) => {
    held?.release()
    throw err
  })
  const { lasting } = app.gatehouse
  const listener = new GatewayListener(config.server, app, first)
  const metrics = config.metrics.enabled
    ? metricsListener(lasting.metrics.registry, lasting.log, config)
    : undefined
  let url: string
  let metricsUrl: string | undefined
  try {
    await app.ready()
    url = await listener.listen(config.server.host, config.server.port)
    app.log.info({ url }, `Server listening at ${url}`)
    metricsUrl = await metrics?.listen()
  } catch (err) {
    held?.release()
    listener.server.close()
    listener.server.closeAllConnections()
    await app.close()
    await lasting.close()
    throw err
  }
  const file = options.configFile
  const reloader =
    file === undefined
      ? undefined
      : new ConfigReloader({
          file,
          env: options.env ?? process.env,
          config,
          listener,
          lasting,
          ...(options.reloadRetry === undefined ? {} : { retry: options.reloadRetry }),
          ...(options.reloadRead === undefined ? {} : { read: options.reloadRead }),
          ...(options.reloadCheck === undefined ? {} : { check: options.reloadCheck }),
          ...(options.reloadCheckThread === undefined ? {} : { checkThread: options.reloadCheckThread }),
          // Every later app borrows the first one's logger, stores, metrics
          // and IdP parts, and answers on the one listener.
          build: (next, m) =>
            buildGateway(next, {
              ...options,
              loggerInstance: lasting.log,
              lasting,
              serverFactory: m.serverFactory,
            }),
        })
  const reload = (): Promise<ReloadResult> =>
    reloader
      ? reloader.reload('call')
      : Promise.resolve({
          result: 'rejected',
          problems: [{ path: '', message: 'no config file to reload: started without one' }],
        })

  // A signal's or the watch's reload has nobody to hand a failure to.
  const unattended = (trigger: 'SIGHUP' | 'file') => reloader?.unattended(trigger)

  let watch: ConfigWatch | undefined
  /**
   * Warns when the watch's first read of `file` has not returned within
   * `bound` (a reload's bound on its read): until it does, changes are not
   * seen. Says so again once it has.
   */
  const heedFirstRead = (ready: Promise<void>, bound: number, file: string) => {
    let late = false
    const warning = setTimeout(() => {
      if (closing) return
      late = true
      const code: LogCode = 'GATEHOUSE_CONFIG_WATCH_STALLED'
      lasting.log.warn(
        { code, file, waitedMs: bound },
        `the config file's first read for the watch has not returned in ${bound / 1000} s (a stalled mount?): the gateway serves the config it loaded at start, and changes to the file are not seen until the read returns; a SIGHUP's reload reads it again`,
      )
    }, bound)
    warning.unref()
    const returned = () => {
      clearTimeout(warning)
      if (late && !closing)
        lasting.log.info(
          { file },
          "the config file's first read for the watch returned: changes to it are seen again",
        )
    }
    ready.then(returned, returned)
  }
  const onHangup = () => {
    if (closing) {
      lasting.log.info({ signal: 'SIGHUP' }, 'SIGHUP while shutting down: no reload')
      return
    }
    unattended('SIGHUP')
  }

  let signalled = false
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      lasting.log.warn({ signal }, 'second signal: exiting now')
      process.exit(1)
    }
    signalled = true
    // The config running now: a reload may have changed it.
    const drainTimeout = options.drainTimeout ?? (reloader?.config ?? config).server.drainTimeout
    lasting.log.info({ signal, drainTimeout }, 'shutting down: draining requests in flight')
    lasting.drain.start(drainTimeout)
    const force = setTimeout(() => {
      lasting.log.warn('drain timeout reached: exiting with requests still in flight')
      process.exit(1)
    }, drainTimeout)
    force.unref()
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        lasting.log.error({ err }, 'error during shutdown')
        process.exit(1)
      },
    )
  }

  let closing: Promise<void> | undefined
  const close = () => {
    closing ??= (async () => {
      // The last of the listener's apps to close, after its requests, tries
      // what is owed once more first: a reload's app closed unused, and the
      // one serving while a replaced one still answers, close sooner.
      lasting.shutDown((app) => listener.closesLast(app))
      watch?.close()
      // A reload in progress applies nothing now; the app it built closes
      // before the stores it borrows.
      const reloads = reloader?.close()
      // After a signal the handlers stay until the process exits: a second
      // SIGTERM or SIGINT forces the exit, and a SIGHUP, whose default action
      // would end the process mid-drain, is heard and ignored.
      if (!signalled) {
        process.off('SIGHUP', onHangup)
        process.off('SIGTERM', onSignal)
        process.off('SIGINT', onSignal)
      }
      await listener.close()
      await reloads
      await metrics?.close()
      await lasting.close()
    })()
    return closing
  }

  if (handleSignals) {
    process.on('SIGHUP', onHangup)
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  }
  const hungUp = held?.release() ?? false
  if (hungUp && handleSignals && reloader) {
    lasting.log.info(
      { signal: 'SIGHUP', file },
      'a SIGHUP came while the gateway was starting: reloading now that it listens',
    )
    unattended('SIGHUP')
  }
  if (reloader && file !== undefined && options.watch !== false) {
    watch = watchConfigFile(file, () => unattended('file'), {
      ...(typeof options.watch === 'object'
        ? {
            debounce: options.watch.debounce,
            ...(options.watch.read === undefined ? {} : { read: options.watch.read }),
          }
        : {}),
      ...(options.configDigest === undefined ? {} : { baseline: options.configDigest }),
      onError: (err) =>
        lasting.log.warn(
          { err, file },
          'the config file cannot be watched for changes; SIGHUP still reloads it',
        ),
    })
    // Not waited for: the config running now was loaded and checked, and a
    // read of the file on a stalled mount (an NFS hard mount, a FUSE server
    // that stopped answering) would hold the listening line, and whatever
    // waits for it, for as long as the mount does. The watch compares the
    // file with `configDigest` once the read returns, and what changed
    // meanwhile is a change then.
    heedFirstRead(watch.ready, options.reloadRead?.timeout ?? RELOAD_READ_TIMEOUT, file)
  }
  // Last, once a signal drains and a reload can be asked for: whoever waits
  // for this line may stop the gateway at once.
  app.log.info(
    {
      url,
      publicUrl: config.server.publicUrl,
      issuer: config.oidc.issuer,
      ...(config.identityProviders.length > 1
        ? { identityProviders: config.identityProviders.map((p) => `${p.name} ${p.issuer}`) }
        : {}),
      store: config.session.store.display,
      routes: config.routes.map((r) => `${r.path} -> ${r.upstream}${r.rewritePath} (${r.token})`),
      redirectUris: redirectUris(config),
    },
    `gatehouse listening on ${url}: ${config.routes.length} routes, ${config.session.store.kind} store, ${issuers(config)}`,
  )

  return {
    get app() {
      return listener.app
    },
    get config() {
      return reloader?.config ?? config
    },
    url,
    metricsUrl,
    reload,
    close,
  }
}

/** `issuer <url>`, or with several providers each name and issuer. */
function issuers(config: GatehouseConfig): string {
  if (config.identityProviders.length === 1) return `issuer ${config.oidc.issuer}`
  return `identity providers ${config.identityProviders.map((p) => `${p.name} (${p.issuer})`).join(', ')}`
}
