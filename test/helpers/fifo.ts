import { execFileSync } from 'node:child_process'

/**
 * Makes a FIFO (named pipe) at `path` with mkfifo(1): Node has no API for
 * one. Opened for reading with no writer, a FIFO blocks the opener until a
 * writer comes, which is what a config path must never do to the gateway.
 */
export function mkfifo(path: string): void {
  execFileSync('mkfifo', [path])
}
