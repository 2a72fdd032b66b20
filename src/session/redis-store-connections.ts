/**
 * The session store's connections: the command connection, and the one
 * writes are confirmed on a replica over when they are (`ReplicaConfirmation`),
 * each with the session scripts defined on it; how a write goes to either,
 * a failure told to the refusal check, and whether both are ready.
 */
import type { ChainableCommander } from 'ioredis'
import { guarded, type RedisClient } from '../redis/connection.js'
import type { ReplicaConfirmation } from '../redis/durability.js'
import { type StoreRefusals, summarizeRefusal } from '../redis/refusals.js'
import {
  CREATE,
  DELETE,
  END_PREVIOUS_FORMAT,
  GET_AND_TOUCH,
  INDEX_ADD,
  INDEX_MEMBERS,
  NOTE_SUB_LOGGED_OUT,
  UPDATE_TOKENS,
} from './redis-scripts.js'
import type { StoreRefusalReport, UpdateResult } from './types.js'

/** The session scripts (redis-scripts.ts) as commands of a connection, each given its one key first. */
export interface SessionScripts {
  ghIndexAdd(
    key: string,
    id: string,
    absoluteExpiresAt: number,
    now: number,
    settled: number,
    random: number,
    offer: number,
  ): Promise<string[]>
  ghCreate(key: string, ...args: (string | number)[]): Promise<number>
  ghGetAndTouch(key: string, now: number, idleMs: number, touchEveryMs: number): Promise<string[] | null>
  ghUpdateTokens(key: string, version: number, tokens: string, refreshExpiry: string): Promise<UpdateResult>
  ghDelete(key: string): Promise<[string | null, string | null, number]>
  ghEndPreviousFormat(key: string): Promise<[string, string | null] | null>
  ghIndexMembers(key: string, now: number): Promise<string[]>
  ghNoteSubLoggedOut(key: string, at: number, iat: number, ttlMs: number): Promise<string>
}

/** A connection with the session scripts defined on it. */
export type ScriptedClient = RedisClient & SessionScripts

/** Defines the scripts on a connection once (EVALSHA, falling back to EVAL after NOSCRIPT). */
function withScripts(client: RedisClient): ScriptedClient {
  const redis = client as RedisClient & Partial<SessionScripts>
  if (!redis.ghGetAndTouch) {
    redis.defineCommand('ghIndexAdd', { numberOfKeys: 1, lua: INDEX_ADD })
    redis.defineCommand('ghCreate', { numberOfKeys: 1, lua: CREATE })
    redis.defineCommand('ghGetAndTouch', { numberOfKeys: 1, lua: GET_AND_TOUCH })
    redis.defineCommand('ghUpdateTokens', { numberOfKeys: 1, lua: UPDATE_TOKENS })
    redis.defineCommand('ghDelete', { numberOfKeys: 1, lua: DELETE })
    redis.defineCommand('ghEndPreviousFormat', { numberOfKeys: 1, lua: END_PREVIOUS_FORMAT })
    redis.defineCommand('ghIndexMembers', { numberOfKeys: 1, lua: INDEX_MEMBERS })
    redis.defineCommand('ghNoteSubLoggedOut', { numberOfKeys: 1, lua: NOTE_SUB_LOGGED_OUT })
  }
  return redis as ScriptedClient
}

type Script = keyof SessionScripts
type ScriptCall<K extends Script> = (...args: Parameters<SessionScripts[K]>) => ReturnType<SessionScripts[K]>

/** The command connection and the writing one of a `RedisSessionStore`, shared by its parts. */
export class StoreConnections {
  /** The command connection: reads, and writes when none are confirmed. */
  readonly redis: ScriptedClient
  /** Where writes go: the confirming connection, else the command connection. */
  readonly writer: ScriptedClient
  readonly #confirm: ReplicaConfirmation | undefined
  readonly #refusals: StoreRefusals | undefined

  constructor(
    client: RedisClient,
    confirm: ReplicaConfirmation | undefined,
    refusals: StoreRefusals | undefined,
  ) {
    this.redis = withScripts(client)
    this.#confirm = confirm
    this.writer = confirm ? withScripts(confirm.client) : this.redis
    this.#refusals = refusals
  }

  /** A write by script on its key, confirmed on a replica when writes are; else on the command connection. */
  write<K extends Script>(name: K, ...args: Parameters<SessionScripts[K]>): ReturnType<SessionScripts[K]> {
    if (!this.#confirm) return (this.redis[name] as ScriptCall<K>).apply(this.redis, args)
    return this.#confirmed(args[0], (p) => {
      ;(p[name] as (...queued: Parameters<SessionScripts[K]>) => ChainableCommander).apply(p, args)
    }) as ReturnType<SessionScripts[K]>
  }

  /** A marker, `SET key 1 PX ttl`, confirmed on a replica when writes are. */
  writeMarker(key: string, ttl: number): Promise<unknown> {
    return this.#confirm
      ? this.#confirm.write(key, (p) => void p.set(key, '1', 'PX', ttl))
      : this.redis.set(key, '1', 'PX', ttl)
  }

  async #confirmed(key: string, queue: (pipeline: ScriptedPipeline) => void): Promise<unknown> {
    const [reply] = await this.#confirm!.write(key, (p) => queue(p as unknown as ScriptedPipeline))
    return reply
  }

  /** `guarded`, telling the refusal check of a failure, which may be one (a write refused OOM or NOPERM). */
  async noticing<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await guarded(call)
    } catch (err) {
      this.#refusals?.noticed(err)
      throw err
    }
  }

  /** Tells the refusal check of a failure that is not thrown on (a slide refused while the read served). */
  noticed(err: unknown): void {
    this.#refusals?.noticed(err)
  }

  async ping(): Promise<void> {
    // Sign-ins, refreshes and sign-outs write over the confirming
    // connection, made apart from the command one: asking only the command
    // connection called the store ready, and /readyz 200, while every
    // write answered 503 (a Cluster connection's connect can be retried
    // for seconds after the other's has succeeded). A PING there waits
    // behind a WAIT in flight, which gives up within half the command timeout.
    await guarded(() =>
      Promise.all([this.redis.ping(), ...(this.writer === this.redis ? [] : [this.writer.ping()])]),
    )
  }

  async refusals(): Promise<readonly StoreRefusalReport[]> {
    if (!this.#refusals) return []
    const found = await guarded(() => this.#refusals!.recent())
    // Without scripts, or the keys they write, no refresh can be
    // coordinated or stored: not ready, and a rollout that brought the ACL
    // halts. A full Redis, or one short of replicas, serves reads, and every
    // instance shares it.
    return found.map((refusal) => ({
      detail: summarizeRefusal(refusal),
      degraded: refusal.kind === 'full' || refusal.kind === 'replicas',
    }))
  }
}

/** The same scripts queued on a pipeline, for writes that `ReplicaConfirmation` runs. */
type ScriptedPipeline = {
  [K in Script]: (...args: Parameters<SessionScripts[K]>) => ChainableCommander
}
