/**
 * Per refresh scope (the session id, or with per-audience coordination the
 * session's audience: `refreshScope`), the store of tokens the IdP issued
 * and no request waits on any more, while it lasts: a late refresh answer
 * awaited (`answer`), or rotated tokens the store refused within the
 * lock's lifetime, offered to it again (`store`).
 */
export type LateWrites = Map<string, LateWrite>

export interface LateWrite {
  readonly stored: Promise<void>
  readonly awaiting: 'answer' | 'store'
}
