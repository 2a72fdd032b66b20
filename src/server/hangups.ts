/**
 * SIGHUPs that come before the gateway can reload. A SIGHUP's default
 * action ends the process, and Node takes it over only once a listener
 * is added: sent while the gateway starts (a ConfigMap tool, a script, a
 * reload right after a deploy), it would kill the process that was asked
 * to reload. Held from as early as the caller can, they are answered by
 * one reload once the gateway listens.
 */
export class HeldHangups {
  #heard = false
  readonly #hear = () => {
    this.#heard = true
  }

  constructor() {
    process.on('SIGHUP', this.#hear)
  }

  /**
   * Stops holding; whether a SIGHUP came. The caller adds its own
   * listener first, so that none falls between the two.
   */
  release(): boolean {
    process.off('SIGHUP', this.#hear)
    return this.#heard
  }
}
