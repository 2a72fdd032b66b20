import { createHash } from 'node:crypto'

/**
 * What the config's watch, a reload and the start compare to tell one
 * version of the file's bytes from another. A digest is compared only
 * with another of its own, never shown or stored.
 */
export function configDigest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/**
 * The digest of a file that could not be read, by why (`err`, as
 * `readConfigFile` throws it): its return is a change, and so is a file
 * refused for another reason, as when a deleted file comes back as a
 * directory or a FIFO; taken for one absent file, those were never read,
 * so never logged nor counted. The same reason again is no change.
 */
export function refusalDigest(err: unknown): string {
  return `refused: ${err instanceof Error ? err.message : String(err)}`
}
