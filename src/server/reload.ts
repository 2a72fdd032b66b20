import { isDeepStrictEqual } from 'node:util'
import type { FastifyInstance } from 'fastify'
import { type ConfigProblem, formatProblem } from '../config/errors.js'
import type { GatehouseConfig } from '../config/types.js'
import { madeIncompatible } from '../oidc/rediscovery.js'
import type { Lasting } from './lasting.js'
import { type GatewayListener, type Mount, mount } from './listener.js'
import { ReloadChecker, type ReloadCheckLimits, type StartCheckThread } from './reload-check.js'
import { discoverForReload, rediscoverWithin } from './reload-discovery.js'
import {
  ReloadOutcomes,
  type ReloadResult,
  type ReloadTrigger,
  STILL_STALLED,
  type Trigger,
} from './reload-outcomes.js'
import { type ReloadRead, ReloadReader } from './reload-read.js'
import { ReloadRetries, type ReloadRetry } from './reload-retry.js'
import { prepareSwap } from './reload-swap.js'

export type { ReloadResult, ReloadTrigger } from './reload-outcomes.js'

/**
 * Which trigger a queued reload runs as when several join it. A signal or
 * a call reads the file whatever its bytes (its sender may know the IdP
 * is back, or a key file fixed); the watch's reads only bytes it has not
 * read; a retry is superseded by any newer reload.
 */
const STRENGTH: Record<Trigger, number> = { retry: 0, file: 1, SIGHUP: 2, call: 2 }

export interface ReloaderOptions {
  /** The config file, read again on each reload. */
  readonly file: string
  readonly env: NodeJS.ProcessEnv
  /** The config running now (that of `listener.app`). */
  readonly config: GatehouseConfig
  readonly listener: GatewayListener
  readonly lasting: Lasting
  /** Builds an app for `config` on `mount`, borrowing `lasting`. */
  readonly build: (config: GatehouseConfig, mount: Mount) => Promise<FastifyInstance>
  /** How a reload refused for a reason not in the file is tried again; default `DEFAULT_RELOAD_RETRY`. */
  readonly retry?: ReloadRetry
  /** How the file is read, and for how long a reload waits; default `readConfigFile`, `RELOAD_READ_TIMEOUT`. */
  readonly read?: ReloadRead
  /** Bounds on the thread a large file is checked on; default `RELOAD_CHECK_LIMITS`. */
  readonly check?: ReloadCheckLimits
  /** How that thread is started; default `startCheckThread`. Tests only (reload-check.ts `StartCheckThread`). */
  readonly checkThread?: StartCheckThread
}

/**
 * Reloads the config file into the running process. A reload reads the
 * file once, off the event loop, refusing what the start refuses (anything
 * but a regular file, or one past `MAX_CONFIG_FILE_BYTES`) and a read
 * that has not returned within `RELOAD_READ_TIMEOUT`; checks it
 * completely, by the same `parseConfig` as `gatehouse check`, a large
 * file on a thread of its own (reload-check.ts), and
 * against the settings only a restart can change (those a file that
 * fails its check can still be read for too); the new app is built
 * and made ready, a provider with no document to start from (a new
 * issuer) discovered, and only then swapped in, at once, for every new request. Anything wrong on the
 * way leaves the running config as it was: its problems are logged one
 * line each, up to `MAX_PROBLEM_LINES`, and counted as `rejected`, and the process stays healthy.
 * Reloads run one at a time; triggers that come during one are served
 * by a single reload after it, which reads the file as the strongest of
 * them asks: a signal or a call whatever its bytes. A reload refused for
 * a reason not in the file (the IdP could not be discovered, the app
 * failed to build) is retried with a bounded backoff, until a newer
 * reload or `close` ends the retries.
 */
export class ConfigReloader {
  readonly #options: ReloaderOptions
  #running: GatehouseConfig
  #current: Promise<ReloadResult> | undefined
  #next: Promise<ReloadResult> | undefined
  /** The trigger `#next` runs as: the strongest of those that joined it. */
  #nextTrigger: Trigger = 'file'
  /**
   * A digest of the bytes the last reload read, whatever came of it,
   * unless what refused them was not in them; of why it could read none
   * (`refusalDigest`), when it could not.
   */
  #lastRead: string | undefined
  readonly #reader: ReloadReader
  readonly #checker: ReloadChecker
  readonly #retries: ReloadRetries
  #closed = false
  /** Aborted when `close` is called: a reload waiting for the IdP stops waiting. */
  readonly #shutdown = new AbortController()
  readonly #outcomes: ReloadOutcomes

  constructor(options: ReloaderOptions) {
    this.#options = options
    this.#running = options.config
    // A read that outlived its reload's wait has returned: nothing else
    // would read the bytes again (reload-read.ts).
    this.#reader = new ReloadReader(options.read, () => {
      if (!this.#closed) this.unattended('retry')
    })
    this.#checker = new ReloadChecker(options.check, options.checkThread)
    this.#outcomes = new ReloadOutcomes(options.file, options.lasting)
    this.#retries = new ReloadRetries(options.retry, options.file, options.lasting.log, {
      run: () => this.unattended('retry'),
      closed: () => this.#closed,
      queued: () => this.#next !== undefined,
    })
  }

  /** The config new requests run on. */
  get config(): GatehouseConfig {
    return this.#running
  }

  reload(trigger: ReloadTrigger): Promise<ReloadResult> {
    return this.#request(trigger)
  }

  /**
   * A reload nobody awaits: a signal's, the watch's, a retry's. Every fault
   * the reloader knows of is a rejected result, a step of the swap that
   * fails included (reload-swap.ts `prepareSwap`); anything else, which may have come
   * once the swap had begun, is logged here, or an unhandled rejection
   * would end the process with every connection on it.
   */
  unattended(trigger: Trigger): void {
    this.#request(trigger).catch((err: unknown) => {
      const { name, message } = err as Error
      this.#options.lasting.log.error(
        { trigger, file: this.#options.file, err: { name, message } },
        'config reload failed while it swapped: parts of the new config may be in use; restart the gateway to be sure of which',
      )
    })
  }

  /**
   * The process is shutting down: the retries end, and no reload applies
   * from now on, the one in progress and the one queued behind it
   * included. Resolves once they have settled, the app either of them
   * built closed: the listener closes only the apps it was given, and the
   * stores such an app borrows close after it.
   */
  close(): Promise<void> {
    this.#closed = true
    this.#shutdown.abort()
    this.#retries.close()
    const settled = () => {}
    return Promise.all([this.#current, this.#next].map((reload) => reload?.then(settled, settled))).then(
      settled,
    )
  }

  #request(trigger: Trigger): Promise<ReloadResult> {
    if (this.#closed) return Promise.resolve(this.#outcomes.abandoned(trigger))
    if (this.#current === undefined) {
      if (trigger !== 'retry') this.#retries.drop(trigger)
      this.#current = this.#reload(trigger).finally(() => {
        this.#current = undefined
      })
      return this.#current
    }
    // The file may have changed again after the reload in progress read it.
    if (this.#next === undefined) {
      this.#nextTrigger = trigger
      const run = () => {
        this.#next = undefined
        return this.#request(this.#nextTrigger)
      }
      // Run whether the reload in progress resolved or threw: joined to its
      // rejection, `#next` would never be reset, and every trigger that came
      // during a later reload would get that old failure instead of a reload.
      this.#next = this.#current.then(run, run)
    } else if (STRENGTH[trigger] > STRENGTH[this.#nextTrigger]) {
      // Joining a reload the watch queued, a signal must not become one
      // that skips the bytes the reload in progress has read.
      this.#nextTrigger = trigger
    } else {
      // Nothing changes for the reload queued: a storm of signals (a
      // sidecar looping `kill -HUP`) is one line, not one a signal.
      return this.#next
    }
    this.#options.lasting.log.info(
      { file: this.#options.file, trigger, queuedAs: this.#nextTrigger },
      'config reload: another is in progress; this one runs after it',
    )
    return this.#next
  }

  async #reload(trigger: Trigger): Promise<ReloadResult> {
    const bytes = await this.#readFile(trigger)
    if ('result' in bytes) return bytes
    const next = await this.#check(trigger, bytes)
    if ('result' in next) return next
    const built = await this.#build(trigger, next)
    if ('result' in built) return built
    return this.#swapIn(trigger, next, built.app, built.m)
  }

  /** The file's bytes, or what came of a reload that reads none, or none new. */
  async #readFile(trigger: Trigger): Promise<Buffer | ReloadResult> {
    const { file, lasting } = this.#options
    // Read once, off the event loop (read.ts): a FIFO, a device or an
    // oversized file is refused before it is read, and a stalled mount
    // holds a pool thread while requests are answered, for at most the
    // read's timeout as far as reloads and the shutdown go. The digest, the
    // check and the lines of a refusal all come from these same bytes.
    if (this.#reader.stalled) {
      // Nothing was read: the next trigger, the watch's too, reads again.
      this.#lastRead = undefined
      return this.#outcomes.rejected(trigger, [{ path: '', message: STILL_STALLED }])
    }
    const read = await this.#reader.read(file, this.#shutdown.signal)
    if (read.result === 'overdue') {
      this.#lastRead = undefined
      return this.#outcomes.rejected(trigger, read.problems)
    }
    if (read.result === 'stopped') return this.#outcomes.abandoned(trigger)
    // One edit is often both a SIGHUP and a change the watch sees: the
    // watch's reload then finds the bytes the signal's has just read, and
    // would log and count its verdict a second time. A signal or a call
    // always reads again: its sender may know something changed outside
    // the file (an IdP back up).
    if (trigger === 'file' && read.digest === this.#lastRead) {
      lasting.log.info(
        { file, trigger },
        'config reload: these bytes were read by the last reload already; nothing to do',
      )
      return { result: 'unchanged' }
    }
    this.#lastRead = read.digest
    if (read.result === 'unreadable') return this.#outcomes.rejected(trigger, read.problems)
    return read.bytes
  }

  /** The config `bytes` hold, checked, if it is to be built; or what came of a reload that builds nothing. */
  async #check(trigger: Trigger, bytes: Buffer): Promise<GatehouseConfig | ReloadResult> {
    const { file, env, lasting } = this.#options
    const log = lasting.log
    // A large file is checked on a thread of its own (reload-check.ts):
    // its parse takes seconds, which requests would otherwise wait out.
    const checked = await this.#checker.check(
      { bytes, file, env, running: this.#running },
      this.#shutdown.signal,
    )
    // The shutdown may have stopped the check, or come while it ran.
    if (this.#closed) return this.#outcomes.abandoned(trigger)
    if (checked.result === 'busy') return this.#deferred(trigger, checked.exited)
    if (checked.result === 'overdue') return this.#overdue(trigger, checked.problems, checked.exited)
    if (checked.result === 'invalid') return this.#outcomes.rejected(trigger, checked.problems)
    for (const warning of checked.warnings)
      log.warn({ file, line: warning.line }, formatProblem(file, warning))
    const next = checked.config
    if (isDeepStrictEqual(next, this.#running)) {
      log.info({ file, trigger }, 'config reload: the file holds the running config; nothing to do')
      // A signal with the file as it was is how an operator says the IdP changed.
      await rediscoverWithin(
        this.#options.listener.app.gatehouse.providers.all,
        next,
        log,
        this.#shutdown.signal,
      )
      return { result: 'unchanged' }
    }
    if (checked.restart.length > 0) return this.#outcomes.rejected(trigger, checked.restart)
    return next
  }

  /** The app for `next`, ready, its providers discovered as a reload needs; or what came of one that failed. */
  async #build(
    trigger: Trigger,
    next: GatehouseConfig,
  ): Promise<{ readonly app: FastifyInstance; readonly m: Mount } | ReloadResult> {
    const m = mount()
    let app: FastifyInstance | undefined
    try {
      app = await this.#options.build(next, m)
      await app.ready()
      await discoverForReload(
        app,
        next,
        this.#options.listener.app.gatehouse.providers.all,
        this.#options.lasting.log,
        this.#shutdown.signal,
      )
    } catch (err) {
      return this.#notApplied(trigger, app, (err as Error).message)
    }
    // A provider that signed in before and cannot with its new entry, against
    // the document just fetched or the one in hand: the file's doing, not
    // the IdP's, so it is refused as `check` refuses, and not retried.
    const broken = madeIncompatible(
      next.identityProviders,
      this.#options.listener.app.gatehouse.providers.all,
      app.gatehouse.providers.all,
    )
    if (broken.length > 0) {
      await app.close().catch(() => {})
      if (this.#closed) return this.#outcomes.abandoned(trigger)
      return this.#outcomes.rejected(trigger, broken)
    }
    return { app, m }
  }

  /** Puts `app`, built for `next`, in use, all at once, or none of it. */
  async #swapIn(
    trigger: Trigger,
    next: GatehouseConfig,
    app: FastifyInstance,
    m: Mount,
  ): Promise<ReloadResult> {
    // A shutdown began while the app was built: the listener takes no new
    // connection, and would never close an app swapped in now, nor the IdP
    // client and upstream pools it holds.
    if (this.#closed) {
      await app.close()
      return this.#outcomes.abandoned(trigger)
    }
    // From here to the swap nothing awaits: no request sees half of it. And
    // what can fail is done before anything changes, or a failing step
    // would leave the running config mixed with parts of the new one, and
    // the new app (its IdP client, its upstream pools) never closed.
    const { lasting, listener } = this.#options
    const before = this.#running
    let swap: () => Promise<void>
    try {
      swap = prepareSwap(lasting, listener, before, next, app, m)
      // Last of what can fail, first of what applies: pino's setter throws
      // (for a name it does not know; the schema allows only its own)
      // before it changes anything.
      lasting.log.level = next.logging.level
    } catch (err) {
      return this.#notApplied(
        trigger,
        app,
        `the new config could not be put in use: ${(err as Error).message}`,
      )
    }
    const retired = swap()
    this.#running = next
    return this.#outcomes.applied(trigger, next, retired)
  }

  /**
   * The new app could not be built, made ready or put in use: it is
   * closed, and the running config kept.
   */
  async #notApplied(
    trigger: Trigger,
    app: FastifyInstance | undefined,
    message: string,
  ): Promise<ReloadResult> {
    await app?.close().catch(() => {})
    // The shutdown may be what failed the build (the stores it borrows closing).
    if (this.#closed) return this.#outcomes.abandoned(trigger)
    // Not the file's fault: the same bytes may apply once the IdP answers.
    // Were they taken as read, the watch's trigger for them (an edit both
    // signalled and seen) would be dismissed, and a resync that swaps in
    // the same bytes is no change to the watch: nothing would read them
    // again. So they are not, and they are retried.
    this.#lastRead = undefined
    const rejected = this.#outcomes.rejected(trigger, [{ path: '', message }])
    this.#retries.later(message)
    return rejected
  }

  /**
   * The check's thread would be a second one: an earlier check's is still
   * out, stuck past its limit (reload-check.ts `ReloadChecker`). The bytes
   * are not taken as read (the watch reports an edit once, and its reload
   * may be this one), and the file is read again, once, as soon as that
   * thread exits, however many reloads were deferred meanwhile.
   */
  #deferred(trigger: Trigger, exited: Promise<void>): ReloadResult {
    this.#lastRead = undefined
    this.#retries.readAfterExit(exited)
    return this.#outcomes.deferred(trigger)
  }

  /**
   * The check ran past its limit and its thread was told to end. Refused
   * (logged and counted) like a read past its own, and as little the
   * file's fault: a thread blocked reading a file the config names on a
   * stalled network mount exits once the mount answers, and then the file
   * is read again (`ReloadRetries.afterExit`).
   */
  #overdue(trigger: Trigger, problems: readonly ConfigProblem[], exited: Promise<void>): ReloadResult {
    this.#lastRead = undefined
    const rejected = this.#outcomes.rejected(trigger, problems)
    this.#retries.afterExit(problems[0]?.message ?? '', exited)
    return rejected
  }
}
