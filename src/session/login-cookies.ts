/**
 * The sign-ins a browser has in progress, one sealed cookie each, named
 * from the sign-in's `state` (a correlation cookie, as ASP.NET's OIDC
 * handler keeps one per sign-in). Two tabs sent to sign in together (a
 * session ended with several open) then each complete: one sign-in's cookie
 * is never overwritten by another's, and a callback reads and spends only
 * the cookie its own `state` names, so one whose `state` matches no
 * pending sign-in, such as a link another site made, changes nothing.
 * A callback that made a session notes it in the others (`hold`), so each
 * ends the one before it, which a `SameSite=Strict` session cookie would
 * not tell them of.
 *
 * What a browser holds is bounded: at most `PENDING_LOGINS_MAX` of them,
 * together no larger than one cookie can be (`PENDING_LOGIN_BYTES`), the
 * oldest cleared first, each living `LOGIN_STATE_TTL_SECONDS` as before.
 * The bytes are counted over every frontend's sign-in cookies that the
 * request carries: the frontends on one host share the browser's jar, and
 * each of their cookies goes with every request to that host.
 */
import { createHash } from 'node:crypto'
import type { SerializeOptions } from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { LoginState } from '../types.js'
import type { SecureSessionCodec } from './sealed-cookie.js'

/**
 * RFC 6265bis §5.6 (step 4 of the storage model), as Chromium, Firefox and
 * Safari apply it: a cookie whose name and value together exceed 4096
 * bytes is dropped, silently.
 */
export const COOKIE_BYTES_MAX = 4096

/** Sign-ins a browser may have in progress at once: a few tabs sent to sign in together. */
export const PENDING_LOGINS_MAX = 5

/**
 * The bytes (names and values) all of a browser's pending sign-in cookies
 * for one host may take together, whichever frontends of that host they
 * are for: one full-size cookie's worth, so the `Cookie` header they add to
 * every request is never larger than the single login cookie made it, and
 * stays clear of the 8 KiB a header line may have behind nginx
 * (`large_client_header_buffers`) and of Node's 16 KiB for all headers.
 * Typical sign-in cookies are about 600 bytes, so several fit.
 */
export const PENDING_LOGIN_BYTES = COOKIE_BYTES_MAX

/** Base64url characters of the state's hash in a cookie's name: 96 bits, unique among a browser's few. */
const NAME_HASH_LENGTH = 16
const NAME_HASH = /^[A-Za-z0-9_-]{16}$/

/** A sign-in sealed into its cookie, not yet sent. */
export interface SealedLogin {
  readonly name: string
  readonly value: string
  /** `name=value` as the browser counts it against `COOKIE_BYTES_MAX`. */
  readonly bytes: number
}

export interface LoginCookiesOptions {
  readonly codec: SecureSessionCodec
  /** The secure-session registration whose key and expiry seal these cookies. */
  readonly sessionName: string
  /** The names' common start (`<session cookie>-login.`): what is ours; the state's hash follows. */
  readonly prefix: string
  /**
   * The one login cookie of the versions before (`<session cookie>-login`):
   * a sign-in an instance of such a version started completes here too.
   */
  readonly formerName: string
  /**
   * The name starts of the other frontends' sign-in cookies. Those the
   * request carries share this host's budget: counted, and cleared when
   * older than what fits, though never opened here (other keys seal them).
   */
  readonly others?: readonly string[] | undefined
  /** Attributes of every sign-in cookie, `maxAge` included. */
  readonly cookie: SerializeOptions
  /** Reads a `Cookie` header as @fastify/cookie does. */
  readonly parse: (header: string) => Record<string, string | undefined>
  /** @fastify/cookie's serializer, which encodes the value. */
  readonly serialize: (name: string, value: string, options: SerializeOptions) => string
}

/** A sign-in cookie the request carried. */
interface Pending {
  readonly name: string
  readonly bytes: number
  /** This frontend's: counted against `PENDING_LOGINS_MAX`. Another frontend's counts in bytes only. */
  readonly own: boolean
  /** One of this frontend's that no longer opens: cleared, whatever the room. */
  readonly spoilt: boolean
}

/** What a sign-in cookie seals. */
interface Content {
  readonly login?: LoginState
}

export class LoginCookies {
  readonly #options: LoginCookiesOptions

  constructor(options: LoginCookiesOptions) {
    this.#options = options
  }

  /** The cookie name of the sign-in whose `state` this is. */
  nameOf(state: string): string {
    const hash = createHash('sha256').update(state).digest('base64url').slice(0, NAME_HASH_LENGTH)
    return `${this.#options.prefix}${hash}`
  }

  /** Seals a sign-in into its cookie; the caller checks `bytes` before `add`. */
  seal(login: LoginState): SealedLogin {
    const { codec, sessionName, serialize } = this.#options
    const name = this.nameOf(login.state)
    const value = codec.encode(codec.create({ login }), sessionName)
    return { name, value, bytes: Buffer.byteLength(serialize(name, value, {})) }
  }

  /**
   * Sets the new sign-in's cookie on `reply`, and clears those of the
   * request's pending sign-ins that no longer open and, oldest first, those
   * beyond the bounds, another frontend's on this host included.
   */
  add(request: FastifyRequest, reply: FastifyReply, sealed: SealedLogin): void {
    let count = 1
    let bytes = sealed.bytes
    let full = false
    // Newest first. Every sign-in cookie is Path=/, and a browser sends the
    // cookies of one path oldest first (RFC 6265bis §5.8.3): the header's
    // order is their age, for other frontends' cookies too, which do not
    // open here. The count is this frontend's alone: its sign-ins beyond
    // it go, not another frontend's older ones that fit in the bytes.
    for (const p of this.#pending(request).reverse()) {
      full ||= bytes + p.bytes > PENDING_LOGIN_BYTES
      if (full || p.spoilt || (p.own && count === PENDING_LOGINS_MAX)) {
        this.#clear(reply, p.name)
        continue
      }
      if (p.own) count++
      bytes += p.bytes
    }
    reply.header('set-cookie', this.#options.serialize(sealed.name, sealed.value, this.#options.cookie))
  }

  /**
   * Whether the request carries a cookie named for the sign-in of `state`,
   * or the one login cookie of the versions before: without either, its
   * callback can complete nothing (`take` finds no sign-in). Nothing is
   * opened, so it costs what reading the names does.
   */
  carries(request: FastifyRequest, state: string | null): boolean {
    if (!state) return false
    const header = request.headers.cookie
    if (!header) return false
    const cookies = this.#options.parse(header)
    return cookies[this.nameOf(state)] !== undefined || cookies[this.#options.formerName] !== undefined
  }

  /**
   * The pending sign-in this callback's `state` names, its cookie cleared on
   * `reply`: single use, whatever the callback's outcome. `undefined` when
   * none has that state; then only a cookie named for it but no longer
   * opening is cleared, and no other sign-in's.
   */
  take(request: FastifyRequest, reply: FastifyReply, state: string | null): LoginState | undefined {
    if (!state) return undefined
    const header = request.headers.cookie
    if (!header) return undefined
    const cookies = this.#options.parse(header)
    const name = this.nameOf(state)
    const value = cookies[name]
    if (value !== undefined) {
      this.#clear(reply, name)
      const login = this.#open(request, value)?.login
      return login?.state === state ? login : undefined
    }
    const { formerName } = this.#options
    const former = cookies[formerName]
    const login = former === undefined ? undefined : this.#open(request, former)?.login
    if (login?.state !== state) return undefined
    this.#clear(reply, formerName)
    return login
  }

  /**
   * Notes `heldKey` (the key of the session a callback just made, cookie
   * form) as the session the browser holds, in each of this frontend's
   * other sign-ins that the request carries: another tab's, whose callback
   * a `SameSite=Strict` session cookie will not reach, and whose login
   * started before that session was made. Its callback then ends that
   * session as the one it replaces, where it left it running unnamed.
   * Each is sealed again with its own age, so it expires when it would
   * have; one that would outgrow the bounds `add` keeps is left as it was.
   */
  hold(request: FastifyRequest, reply: FastifyReply, taken: string, heldKey: string): void {
    const header = request.headers.cookie
    if (!header) return
    const { codec, sessionName, serialize, cookie } = this.#options
    const cookies = this.#options.parse(header)
    const takenName = this.nameOf(taken)
    // The taken sign-in's cookie is cleared on this reply: it counts no more.
    const pending = this.#pending(request).filter((p) => p.name !== takenName)
    let bytes = pending.reduce((sum, p) => sum + p.bytes, 0)
    const now = Math.round(Date.now() / 1000)
    // Newest first, as `add` keeps them: the likeliest still to complete.
    for (const p of pending.reverse()) {
      if (!p.own || p.spoilt) continue
      const opened = codec.decode(cookies[p.name]!, request.log, sessionName)
      const login = (opened?.data() as Content | undefined)?.login
      // secure-session's seconds of sealing, which its expiry counts from.
      const sealedAt: unknown = opened?.get('__ts')
      if (login === undefined || login.heldKey === heldKey || typeof sealedAt !== 'number') continue
      // Some of it is left, or it would not have opened.
      const left = Math.max(1, (cookie.maxAge ?? 0) - (now - sealedAt))
      const value = codec.encode(codec.create({ login: { ...login, heldKey }, __ts: sealedAt }), sessionName)
      const size = Buffer.byteLength(serialize(p.name, value, {}))
      // Within the bytes of them all, so within one cookie's (PENDING_LOGIN_BYTES).
      if (bytes - p.bytes + size > PENDING_LOGIN_BYTES) continue
      bytes += size - p.bytes
      reply.header('set-cookie', serialize(p.name, value, { ...cookie, maxAge: left }))
    }
  }

  /** The sign-in cookies of this frontend and the others that the request carries, in header order. */
  #pending(request: FastifyRequest): Pending[] {
    const header = request.headers.cookie
    if (!header) return []
    const { prefix, others = [], serialize } = this.#options
    const found: Pending[] = []
    // The header's size, which Node bounds (16 KiB), bounds this loop.
    for (const [name, value] of Object.entries(this.#options.parse(header))) {
      if (value === undefined) continue
      const own = name.startsWith(prefix)
      const start = own ? prefix : others.find((other) => name.startsWith(other))
      if (start === undefined || !NAME_HASH.test(name.slice(start.length))) continue
      found.push({
        name,
        bytes: Buffer.byteLength(serialize(name, value, {})),
        own,
        spoilt: own && this.#open(request, value)?.login === undefined,
      })
    }
    return found
  }

  #open(request: FastifyRequest, value: string): Content | undefined {
    const { codec, sessionName } = this.#options
    const opened = codec.decode(value, request.log, sessionName)
    return opened === null ? undefined : (opened.data() as unknown as Content)
  }

  #clear(reply: FastifyReply, name: string): void {
    const options = { ...this.#options.cookie, expires: new Date(0), maxAge: 0 }
    reply.header('set-cookie', this.#options.serialize(name, '', options))
  }
}
