import type { Test } from 'tap'
import { type DevClient, type DevIdp, type DevIdpOptions, startDevIdp } from '../../dev/idp.js'
import { type EchoUpstream, startEchoUpstream } from '../../dev/upstream.js'
import { buildGateway } from '../../src/server/gateway.js'
import { createRedisStores } from '../../src/server/redis-stores.js'
import { CookieJar } from './cookie-jar.js'
import {
  CLIENT_ID,
  CLIENT_SECRET,
  listenOn,
  route,
  type TestConfigInput,
  type TestRoute,
  testConfig,
} from './gateway.js'
import { apiCall, followLoginFlow, type JarResponse, jarFetch, login } from './login.js'
import { onFreePorts } from './ports.js'
import { startRedis } from './redis.js'

export interface ReplicaSet {
  readonly idp: DevIdp
  readonly urls: readonly string[]
  readonly apps: readonly Awaited<ReturnType<typeof buildGateway>>[]
  /**
   * A signed-in user whose cookie every replica accepts (one origin behind
   * a load balancer); an empty jar with `signIn: false`.
   */
  readonly jar: CookieJar
  close(): Promise<void>
}

export interface ReplicaSetOptions {
  /** `session.store`, as a user would write it; absent, each replica keeps its own in memory. */
  readonly store?: string | undefined
  readonly keyPrefix: string
  /** Seconds. */
  readonly accessTokenTtl: number
  readonly now?: () => number
  /** Passed to `createRedisStores`; false only for negative controls. */
  readonly confirmWrites?: boolean
  readonly refreshBefore?: number
  readonly refreshWait?: number
  readonly count?: number
  /** Where `/api/orders` goes; default an echo upstream started for the set. */
  readonly upstream?: string
  /** The routes, given that upstream; default `/api/orders` alone, a user route. */
  readonly routes?: (upstream: string) => TestRoute[]
  /**
   * Overrides of each replica's `oidc` block, such as `dpop: true`; a
   * function of the replica's index gives replicas different ones, as
   * while a config change reaches them one by one. The user signs in at
   * the first.
   */
  readonly oidc?: TestConfigInput['oidc'] | ((replica: number) => TestConfigInput['oidc'])
  /** IdP options beyond the access-token TTL. */
  readonly idp?: Partial<Omit<DevIdpOptions, 'clients'>>
  /** Registration of the gateway's client beyond its id, secret and redirect URI. */
  readonly client?: Partial<Omit<DevClient, 'clientId' | 'clientSecret' | 'redirectUris'>>
  /** Where every replica logs, at `info` and above; default nowhere. */
  readonly logStream?: { write(line: string): void }
  /**
   * Every replica's `server.publicUrl` is the first's, as behind one load
   * balancer, so each can complete a sign-in (`signInAt`); default: each
   * its own, and only the first signs in.
   */
  readonly oneOrigin?: boolean
  /** `session.maxPerUser`. */
  readonly maxPerUser?: number
  /** Default true; false for routes that need no user (anonymous `client` routes), which then skip the sign-in. */
  readonly signIn?: boolean
}

/**
 * Gatehouse replicas on one shared store (or, without `store`, each on its
 * own memory store), in front of the rotating dev IdP and an echo upstream,
 * with one user signed in unless `signIn` is false.
 */
export async function startReplicaSet(options: ReplicaSetOptions): Promise<ReplicaSet> {
  const upstream: EchoUpstream = await startEchoUpstream()
  const now = options.now ?? Date.now
  // The IdP must know the first replica's redirect URI, so the ports are
  // chosen first; onFreePorts picks again if one is taken before its listen.
  const { idp, apps, ports } = await onFreePorts(options.count ?? 3, async (ports) => {
    const publicUrl = `http://127.0.0.1:${ports[0]}`
    const idp = await startDevIdp({
      accessTokenTtl: options.accessTokenTtl,
      ...options.idp,
      clients: [
        {
          ...options.client,
          clientId: CLIENT_ID,
          clientSecret: CLIENT_SECRET,
          redirectUris: [`${publicUrl}/auth/callback`],
        },
      ],
    })
    const apps: Awaited<ReturnType<typeof buildGateway>>[] = []
    try {
      for (const [replica, port] of ports.entries()) {
        const oidc = typeof options.oidc === 'function' ? options.oidc(replica) : options.oidc
        const config = testConfig({
          port,
          ...(options.oneOrigin ? { publicUrl } : {}),
          ...(options.maxPerUser === undefined ? {} : { maxPerUser: options.maxPerUser }),
          issuer: idp.issuer,
          ...(options.store === undefined ? {} : { store: options.store }),
          keyPrefix: options.keyPrefix,
          refreshBefore: options.refreshBefore ?? 500,
          refreshWait: options.refreshWait ?? 10_000,
          routes: (options.routes ?? ((to) => [route('/api/orders', to)]))(options.upstream ?? upstream.url),
          ...(oidc ? { oidc } : {}),
          ...(options.logStream ? { logLevel: 'info' as const } : {}),
        })
        const stores =
          options.store === undefined
            ? undefined
            : await createRedisStores(config, now, {
                ...(options.confirmWrites === false ? { confirmWrites: false } : {}),
              })
        const app = await buildGateway(config, {
          ...(stores ? { stores } : {}),
          now,
          logStream: options.logStream,
        })
        await listenOn(app, port)
        apps.push(app)
        await app.gatehouse.whenDiscovered()
      }
    } catch (err) {
      for (const app of apps) await app.close()
      await idp.close()
      throw err
    }
    return { idp, apps, ports }
  }).catch(async (err) => {
    await upstream.close()
    throw err
  })
  const urls = ports.map((p) => `http://127.0.0.1:${p}`)
  const jar = options.signIn === false ? new CookieJar() : await signedIn(urls[0]!)
  if (options.signIn !== false)
    for (const url of urls) jar.set(url, 'gatehouse', jar.get(urls[0]!, 'gatehouse')!)
  idp.resetStats()
  return {
    idp,
    urls,
    apps,
    jar,
    async close() {
      for (const app of apps) await app.close()
      await upstream.close()
      await idp.close()
    },
  }
}

/**
 * Two replicas behind one origin (`oneOrigin`), on a Redis of their own,
 * with the default route; both closed when `t` ends. For what a user's two
 * browsers do at once, one at each instance (`signInAt`).
 */
export async function twoInstancesOnOneRedis(t: Test): Promise<ReplicaSet> {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const set = await startReplicaSet({
    store: redis.url,
    keyPrefix: redis.prefix,
    accessTokenTtl: 60,
    count: 2,
    oneOrigin: true,
  })
  t.teardown(() => set.close())
  return set
}

/**
 * A user signed in at `url`. A login whose new session no replica confirms
 * in time (`WAIT 1 500` on a loaded machine) is answered 503, as it should
 * be, and the user signs in again: so does this, for at most 15 s. Before,
 * a 503 here went unnoticed, and the test failed later on a 401 with no
 * session, far from its cause.
 */
async function signedIn(url: string): Promise<CookieJar> {
  const end = Date.now() + 15_000
  for (;;) {
    const { jar, callback } = await login(url)
    if (callback.status === 302) return jar
    if (callback.status !== 503 || Date.now() > end) {
      throw new Error(
        `the replica set's login answered HTTP ${callback.status}: ${callback.text.slice(0, 300)}`,
      )
    }
  }
}

/** A browser's sign-in held just before its callback, so several can complete at once. */
export interface PendingSignIn {
  readonly jar: CookieJar
  /** The replica it signs in at, whose host the jar keeps the session cookie for. */
  readonly at: string
  /** Sends the browser back from the IdP to the replica it started at; resolves to the gateway's answer. */
  complete(): Promise<JarResponse>
}

/**
 * `user` signs in, in a browser of its own (a new IdP session), at replica
 * `replica` of a set with `oneOrigin`: the IdP sends the browser back to
 * the set's one origin, which a load balancer would send on to that
 * replica, as `complete` does.
 */
export async function signInAt(set: ReplicaSet, replica: number, user: string): Promise<PendingSignIn> {
  const jar = new CookieJar()
  const at = set.urls[replica]!
  const start = await jarFetch(jar, `${at}/auth/login?returnTo=/`)
  if (start.status !== 302 || !start.location) throw new Error(`/auth/login answered HTTP ${start.status}`)
  const back = new URL(await followLoginFlow(jar, start.location, user))
  back.host = new URL(at).host
  return { jar, at, complete: () => jarFetch(jar, back.href) }
}

/**
 * The first answer to the signed-in user at `url` that is not a 503, once
 * the replicas have found Redis again after a failover (bounded: after
 * 15 s, the last 503).
 */
export async function onceServed(set: ReplicaSet, url: string): Promise<JarResponse> {
  let answer = await apiCall(set.jar, `${url}/api/orders`)
  const end = Date.now() + 15_000
  while (answer.status === 503 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100))
    answer = await apiCall(set.jar, `${url}/api/orders`)
  }
  return answer
}

/** One answer of a storm: when it came back, its status, and whether a 503 said when to retry. */
export interface StormAnswer {
  readonly at: number
  readonly status: number
  readonly retryAfter: boolean
}

/**
 * `loops` concurrent request loops, round-robin over the replicas, until
 * `done()` says stop; `onAnswer` sees each answer as it arrives.
 */
export async function storm(
  set: ReplicaSet,
  loops: number,
  done: () => boolean,
  onAnswer: (answer: StormAnswer) => void = () => {},
): Promise<StormAnswer[]> {
  const answers: StormAnswer[] = []
  let next = 0
  await Promise.all(
    Array.from({ length: loops }, async () => {
      while (!done()) {
        const url = set.urls[next++ % set.urls.length]!
        const response = await apiCall(set.jar, `${url}/api/orders`).catch(() => undefined)
        const answer = {
          at: Date.now(),
          status: response?.status ?? 0,
          retryAfter: response?.headers.has('retry-after') ?? false,
        }
        answers.push(answer)
        onAnswer(answer)
      }
    }),
  )
  return answers
}
