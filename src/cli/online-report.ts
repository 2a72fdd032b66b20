/** How one capability stands: `BLOCKING` means Gatehouse could not log anyone in. */
export type Verdict = 'ok' | 'warn' | 'BLOCKING' | '-'

/** One line of the table: what the config needs, what the IdP says, and the verdict. */
export interface Row {
  readonly capability: string
  readonly need: string
  readonly advertised: string
  readonly verdict: Verdict
}

/** What `check --online` found: the rows of the table, the hints, and whether Gatehouse can log in. */
export interface OnlineReport {
  readonly rows: readonly Row[]
  readonly hints: readonly string[]
  readonly blocking: boolean
  /**
   * Set when no answer of the IdP said whether it accepts the client's
   * credentials: why not. Not blocking, but the last line says so.
   */
  readonly unproven?: string
}
