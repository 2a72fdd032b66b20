/** One thing `check` reports of the config, at the path of its option. */
export interface Finding {
  readonly path: (string | number)[]
  readonly message: string
}

/** Records a finding as it is made. */
export type Add = (path: (string | number)[], message: string) => void
