/**
 * How long before its expiry a token is renewed: `refreshBefore`
 * (`tokens.refreshBefore`), or half the token's lifetime when that is less.
 * A token the IdP lets live no longer than `refreshBefore` would be due the
 * moment it arrived: each request would redeem the refresh token again
 * (rotating it each time), and a flight that finds its own fresh token due
 * goes round until it gives up. Half its life leaves the other half to
 * refresh in, as the margin is meant to. `lifetime` is unknown for tokens
 * stored before it was recorded.
 */
export function refreshMargin(refreshBefore: number, lifetime: number | undefined): number {
  return lifetime === undefined ? refreshBefore : Math.min(refreshBefore, lifetime / 2)
}

/** Whether tokens of `lifetime` are renewed earlier than `refreshBefore` says, which an operator should hear of. */
export function livesShort(refreshBefore: number, lifetime: number | undefined): lifetime is number {
  return lifetime !== undefined && lifetime / 2 < refreshBefore
}
