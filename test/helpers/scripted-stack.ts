import type { Test } from 'tap'
import type { CookieJar } from './cookie-jar.js'
import type { TestRoute } from './gateway.js'
import { apiCall } from './login.js'
import { type ScriptedUpstream, scriptedUpstream } from './scripted-upstream.js'
import { type Stack, type StackOptions, startStack } from './stack.js'

export interface ScriptedStack {
  readonly upstream: ScriptedUpstream
  readonly stack: Stack
  /** The gateway's URL. */
  readonly base: string
}

/** A real IdP and gateway in front of one scripted upstream, all closed when the test ends. */
export async function startScriptedStack(
  t: Test,
  routes: (upstream: string) => TestRoute[],
  options: Omit<StackOptions, 'routes'> = {},
): Promise<ScriptedStack> {
  const upstream = await scriptedUpstream()
  t.teardown(() => upstream.close())
  const stack = await startStack(t, { ...options, routes: () => routes(upstream.url) })
  return { upstream, stack, base: stack.gateway.url }
}

/**
 * Ends the jar's user's sessions in the store behind the browser's back:
 * the next answer to its cookie must clear it, so it goes out through
 * Fastify's send (and its onSend hooks) rather than the hijacked reply.
 */
export async function endSessionsOf(stack: Stack, jar: CookieJar): Promise<void> {
  const base = stack.gateway.url
  const user = (await apiCall(jar, `${base}/auth/user`)).json<{ sub: string }>()
  const store = stack.gateway.app.gatehouse.stores.sessions
  for (const id of await store.idsBySub(user.sub)) await store.delete(id)
}
