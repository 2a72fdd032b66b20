import type { TokenAudience } from '../types.js'

/**
 * `none` turns off both in-process coalescing and the cluster lock;
 * `per-audience` keys both per (session, route audience) instead of per
 * session. They exist only so the test suite can show that the races they
 * guard against are real; never configure them in production.
 */
export type Coordination = 'single-flight' | 'none' | 'per-audience'

/**
 * What one refresh flight and its lock are for: the session, or with
 * per-audience coordination the session's audience.
 */
export function refreshScope(
  coordination: Coordination | undefined,
  id: string,
  audience: TokenAudience | undefined,
): string {
  return coordination === 'per-audience' ? `${id}:${audience?.key ?? ''}` : id
}
