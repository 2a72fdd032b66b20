import { type ConfigProblem, formatProblem, MAX_PROBLEM_LINES, unlistedProblems } from '../config/errors.js'
import type { GatehouseConfig } from '../config/types.js'
import type { LogCode } from '../errors.js'
import type { Lasting } from './lasting.js'

/** What came of one reload. */
export type ReloadResult =
  | { readonly result: 'applied'; readonly config: GatehouseConfig }
  /** The file holds the running config: nothing was rebuilt. */
  | { readonly result: 'unchanged' }
  /**
   * The running config was kept; each problem is logged with its line (the
   * first `MAX_PROBLEM_LINES`, then how many more), and counted, but for the
   * one of a reload the shutdown ended (`close`). `problems` holds them all.
   */
  | { readonly result: 'rejected'; readonly problems: readonly ConfigProblem[] }

/** What set a reload off, for its log line. */
export type ReloadTrigger = 'SIGHUP' | 'file' | 'call'

/** A trigger, or the reloader's own retry of a reload the file was not to blame for. */
export type Trigger = ReloadTrigger | 'retry'

export const STILL_STALLED =
  'a read of the config file begun by an earlier reload has not returned yet (a stalled network mount?); no other is started until it does, and then the file is read again'

export const STILL_CHECKING =
  'the thread that checked the file for an earlier reload has not exited yet (a file the config names on a stalled network mount?); no other is started until it does, and then the file is read again'

/** What each way a reload ends logs, counts and returns. */
export class ReloadOutcomes {
  readonly #file: string
  readonly #lasting: Pick<Lasting, 'log' | 'metrics'>

  constructor(file: string, lasting: Pick<Lasting, 'log' | 'metrics'>) {
    this.#file = file
    this.#lasting = lasting
  }

  /** `next` is in use, `retired` closing the previous config once its requests finish. */
  applied(trigger: Trigger, next: GatehouseConfig, retired: Promise<void>): ReloadResult {
    const file = this.#file
    const { log, metrics } = this.#lasting
    metrics.configReloads.inc({ result: 'applied' })
    const code: LogCode = 'GATEHOUSE_CONFIG_RELOADED'
    log.info(
      {
        code,
        file,
        trigger,
        routes: next.routes.map((r) => `${r.path} -> ${r.upstream}${r.rewritePath} (${r.token})`),
      },
      `config reloaded from ${file}: ${next.routes.length} routes; requests in flight finish on the previous config`,
    )
    retired.then(
      () => log.debug({ file }, 'the previous config has finished its last request and is closed'),
      (err: unknown) => log.error({ err }, 'closing the previous config failed'),
    )
    return { result: 'applied', config: next }
  }

  /**
   * Deferred for a stuck check thread (reload.ts `#deferred`): nothing is
   * wrong with the file, so this is neither logged as refused nor counted.
   */
  deferred(trigger: Trigger): ReloadResult {
    const code: LogCode = 'GATEHOUSE_CONFIG_RELOAD_DEFERRED'
    this.#lasting.log.warn({ code, file: this.#file, trigger }, `config reload deferred: ${STILL_CHECKING}`)
    return { result: 'rejected', problems: [{ path: '', message: STILL_CHECKING }] }
  }

  /** Not applied, for the shutdown: nothing is wrong with the file, so it is neither logged as refused nor counted. */
  abandoned(trigger: Trigger): ReloadResult {
    const message =
      'the gateway is shutting down: the file is not applied, and the running config serves what is left'
    this.#lasting.log.info({ file: this.#file, trigger }, `config reload: ${message}`)
    return { result: 'rejected', problems: [{ path: '', message }] }
  }

  rejected(trigger: Trigger, problems: readonly ConfigProblem[]): ReloadResult {
    const file = this.#file
    const { log, metrics } = this.#lasting
    const code: LogCode = 'GATEHOUSE_CONFIG_RELOAD_REJECTED'
    for (const problem of problems.slice(0, MAX_PROBLEM_LINES)) {
      log.error({ code, file, trigger, line: problem.line, path: problem.path }, formatProblem(file, problem))
    }
    const unlisted = unlistedProblems(file, problems.length)
    if (unlisted !== undefined)
      log.error({ code, file, trigger, unlisted: problems.length - MAX_PROBLEM_LINES }, unlisted)
    log.error(
      { code, file, trigger, problems: problems.length },
      `config reload rejected: ${file} has ${problems.length} problem${problems.length === 1 ? '' : 's'}; the running config is kept`,
    )
    metrics.configReloads.inc({ result: 'rejected' })
    return { result: 'rejected', problems }
  }
}
