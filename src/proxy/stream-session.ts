import type { FastifyRequest } from 'fastify'
import type { RouteConfig } from '../config/types.js'
import { isGatehouseError } from '../errors.js'
import { sessionEndsAt } from '../session/sessions.js'
import type { SessionRef } from '../session/types.js'
import { type GuardDeps, tokenOfSession } from './guard.js'

/**
 * Whether the session an answer was sent for still stands, asked again
 * while the answer streams. The token rides on the request only, so an
 * upstream streaming a long answer (server-sent events, a long download,
 * a long poll) cannot tell that the session ended meanwhile: without this,
 * a stream opened with a stolen cookie went on after "log out everywhere",
 * as a WebSocket would without its watch (websocket/watch.ts).
 */
export interface StreamSession {
  /** How long the answer's head or a chunk may follow the last check before the session is read again, ms. */
  readonly interval: number
  /** The session the request's cookie names; `undefined` when it names none. */
  ref(request: FastifyRequest): SessionRef | undefined
  /**
   * False once the session has ended (logout, back-channel logout, expiry),
   * or its record no longer opens with the cookie's key; true while it
   * stands, and when the store cannot tell (unreachable), as the WebSocket
   * watch does.
   */
  stands(ref: SessionRef): Promise<boolean>
}

/**
 * The check of a route whose upstream gets a token on the strength of the
 * request's session (`tokenOfSession`), else `undefined`. The read does not
 * slide the idle expiry: a stream is not the user at work.
 */
export function streamSession(
  route: RouteConfig,
  deps: Pick<GuardDeps, 'sessions'>,
  interval: number,
  now: () => number,
): StreamSession | undefined {
  if (!tokenOfSession(route)) return undefined
  const { sessions } = deps
  return {
    interval,
    ref: (request) => sessions.refOf(request),
    async stands(ref) {
      const at = now()
      try {
        const session = await sessions.store.get(ref, at, { touch: false })
        return session !== undefined && sessionEndsAt(session) > at
      } catch (err) {
        return !(isGatehouseError(err) && err.code === 'GATEHOUSE_ERR_SESSION_UNREADABLE')
      }
    },
  }
}
