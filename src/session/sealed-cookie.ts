import type { SerializeOptions } from '@fastify/cookie'
import type { Session, SessionData } from '@fastify/secure-session'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { CookieConnection, OpenedCookie, OpenedCookies } from './opened-cookies.js'

/** @fastify/secure-session's sealing, as its plugin decorates it: libsodium secretbox, key rotation, expiry. */
export interface SecureSessionCodec {
  decode(sealed: string, log: FastifyBaseLogger, sessionName: string): Session | null
  encode(session: Session, sessionName: string): string
  create(data: Record<string, unknown>): Session
}

/** The codec of an instance @fastify/secure-session is registered on. */
export function codecOf(app: FastifyInstance): SecureSessionCodec {
  return {
    decode: (sealed, log, sessionName) => app.decodeSecureSession(sealed, log, sessionName),
    encode: (session, sessionName) => app.encodeSecureSession(session, sessionName),
    create: (data) => app.createSecureSession(data),
  }
}

export interface SealedCookiesOptions {
  readonly codec: SecureSessionCodec
  /** The secure-session registration whose key and expiry seal this cookie. */
  readonly sessionName: string
  /** The cookie's name: a parameter, so one registration can serve cookies of several names. */
  readonly cookieName: string
  readonly cookie: SerializeOptions
  /** Reads a `Cookie` header as @fastify/cookie does. */
  readonly parse: (header: string) => Record<string, string | undefined>
  /** @fastify/cookie's serializer, which encodes the value. */
  readonly serialize: (name: string, value: string, options: SerializeOptions) => string
  /** Values opened before; absent, every request opens its cookie. */
  readonly cache?: OpenedCookies | undefined
  /** The sessions' clock, epoch ms; the cache's bounds are on it. */
  readonly now: () => number
  /** The sessions' idle timeout, ms: how long an entry may be served before its session is read. */
  readonly idleTimeout: number
}

const EMPTY: Readonly<Record<string, unknown>> = Object.freeze({})

/**
 * One sealed cookie as a request sees it, with the methods the code used
 * on @fastify/secure-session's session object. Nothing is opened until a
 * value is read, so a request that never reads the cookie pays nothing for
 * it. Opening goes through the cache of opened values first; a cached
 * content is shared and frozen, so the first write takes a copy.
 */
export class SealedCookie {
  changed = false
  deleted = false
  readonly #jar: SealedCookies
  readonly #request: FastifyRequest
  /** `undefined` until opened. */
  #data: Readonly<Record<string, unknown>> | undefined
  /** True while `#data` is shared (the cache's or `EMPTY`) and must be copied before a write. */
  #shared = true
  /** The value that came in, once read; `undefined` when there was none. */
  #sealed: string | undefined
  #entry: OpenedCookie | undefined
  /** secure-session's timestamp of the value, kept when only a key rotation re-seals it. */
  #ts: number | undefined
  #options: SerializeOptions | null = null

  constructor(jar: SealedCookies, request: FastifyRequest) {
    this.#jar = jar
    this.#request = request
  }

  get<K extends keyof SessionData>(key: K): SessionData[K] | undefined {
    return this.#read()[key] as SessionData[K] | undefined
  }

  set<K extends keyof SessionData>(key: K, value: SessionData[K] | undefined): void {
    this.#writable()[key] = value
    this.touch()
  }

  /** The content without secure-session's timestamp, as a copy. */
  data(): Record<string, unknown> {
    return { ...this.#read() }
  }

  /** Clears the cookie on the way out; its cached opening goes now. */
  delete(): void {
    this.#forget()
    this.deleted = true
    this.touch()
  }

  /** Empties the content, to be sealed afresh (a new login). */
  regenerate(): void {
    this.#forget()
    this.#data = {}
    this.#shared = false
    this.#sealed = undefined
    this.touch()
  }

  touch(): void {
    this.changed = true
    this.#ts = undefined
  }

  options(options: SerializeOptions): void {
    this.#options = options
  }

  /**
   * The session this cookie names ends at `at` (sessions' clock), as just
   * read from its store: the cached opening is served no longer.
   */
  bound(at: number): void {
    const entry = this.#entry
    if (entry !== undefined) entry.until = Math.min(at, this.#jar.now() + this.#jar.idleTimeout)
  }

  /**
   * `derive(content)`, computed once per cookie value while its opening is
   * cached (the session key, whose record id costs an HMAC). Not cached
   * once this request has changed the content.
   */
  derived<V>(derive: (data: Readonly<Record<string, unknown>>) => V): V {
    const data = this.#read()
    const entry = this.#entry
    if (entry === undefined || !this.#shared) return derive(data)
    if (entry.derived === undefined) entry.derived = derive(data)
    return entry.derived as V
  }

  /** The sealed value to send, or `undefined` to clear the cookie; only when `changed`. */
  seal(): string | undefined {
    if (this.deleted) return undefined
    const data = this.#ts === undefined ? this.data() : { ...this.#read(), __ts: this.#ts }
    const { codec, sessionName } = this.#jar.options
    return codec.encode(codec.create(data), sessionName)
  }

  get cookieOptions(): SerializeOptions | null {
    return this.#options
  }

  #read(): Readonly<Record<string, unknown>> {
    if (this.#data === undefined) this.#data = this.#open()
    return this.#data
  }

  #writable(): Record<string, unknown> {
    const data = this.#read()
    // Not shared: this request's own copy.
    if (!this.#shared) return data as Record<string, unknown>
    const copy = { ...data }
    this.#data = copy
    this.#shared = false
    return copy
  }

  #forget(): void {
    if (this.#sealed !== undefined) this.#jar.options.cache?.delete(this.#sealed)
    this.#entry = undefined
  }

  /** The content the request's cookie opens to (`EMPTY` without one); sets what `#read` keeps beside it. */
  #open(): Readonly<Record<string, unknown>> {
    const jar = this.#jar
    const { options } = jar
    const header = this.#request.headers.cookie
    if (!header) return EMPTY
    const cache = options.cache
    const connection = this.#request.raw.socket as CookieConnection | undefined
    const remembered = cache?.sealedIn(header, connection)
    const sealed = remembered ?? options.parse(header)[options.cookieName]
    this.#sealed = sealed
    if (sealed === undefined) return EMPTY
    const now = jar.now()
    const cached = cache?.get(sealed, now)
    if (cached !== undefined) {
      if (remembered === undefined) cache?.remember(header, sealed, connection)
      this.#entry = cached
      return cached.data
    }
    const opened = options.codec.decode(sealed, this.#request.log, options.sessionName)
    if (opened === null) return EMPTY
    const ts = opened.get('__ts') as number
    const data = opened.data() as unknown as Record<string, unknown>
    if (opened.changed) {
      // Opened with an older key: sealed again with the current one on the
      // way out, keeping its timestamp. Not cached, so the next request,
      // which carries the new value, is the one that fills the cache.
      this.changed = true
      this.#ts = ts
      this.#shared = false
      return data
    }
    const entry: OpenedCookie = {
      data: Object.freeze(data),
      expiresAt: (ts + jar.expiry) * 1000,
      until: now + jar.idleTimeout,
      derived: undefined,
    }
    if (cache !== undefined) {
      cache.set(sealed, entry)
      cache.remember(header, sealed, connection)
    }
    this.#entry = entry
    return entry.data
  }
}

/**
 * A sealed cookie of one name: read lazily per request (`of`), written on
 * the way out when the request changed it (`write`).
 */
export class SealedCookies {
  readonly options: SealedCookiesOptions
  /** secure-session's `expiry` of the registration, seconds. */
  readonly expiry: number
  /** Where a request holds its cookie: a property Fastify gives every request, so all share one shape. */
  readonly slot: symbol

  constructor(options: SealedCookiesOptions & { readonly expiry: number; readonly slot: symbol }) {
    this.options = options
    this.expiry = options.expiry
    this.slot = options.slot
  }

  get idleTimeout(): number {
    return this.options.idleTimeout
  }

  now(): number {
    return this.options.now()
  }

  /** The request's cookie, made on first use; opening waits for the first read. */
  of(request: FastifyRequest): SealedCookie {
    const held = request as unknown as Record<symbol, SealedCookie | null>
    let cookie = held[this.slot]
    if (!cookie) {
      cookie = new SealedCookie(this, request)
      held[this.slot] = cookie
    }
    return cookie
  }

  /** The request's cookie only if something asked for it. */
  peek(request: FastifyRequest): SealedCookie | null {
    return (request as unknown as Record<symbol, SealedCookie | null>)[this.slot] ?? null
  }

  /**
   * Sets or clears the cookie on `reply` when the request changed it; from
   * an `onSend` hook. Written as a header of its own: @fastify/cookie's
   * `setCookie` would wait for its own `onSend` hook, which has already
   * run, or done nothing, by now.
   */
  write(request: FastifyRequest, reply: FastifyReply): void {
    const cookie = this.peek(request)
    if (cookie === null || !cookie.changed) return
    const sealed = cookie.seal()
    const { cookieName, serialize } = this.options
    // @fastify/cookie's default, which secure-session's options relied on.
    const options = { sameSite: 'lax' as const, ...this.options.cookie, ...cookie.cookieOptions }
    const line =
      sealed === undefined
        ? serialize(cookieName, '', { ...options, expires: new Date(0), maxAge: 0 })
        : serialize(cookieName, sealed, options)
    // Fastify adds each `set-cookie` to those already set.
    reply.header('set-cookie', line)
  }
}
