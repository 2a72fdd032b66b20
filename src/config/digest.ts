import { createHash } from 'node:crypto'

/**
 * What the config's watch, a reload and the start compare to tell one
 * version of the file's bytes from another. A digest is compared only
 * with another of its own, never shown or stored.
 */
export function configDigest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** The digest of a file that cannot be read, as between a delete and a create: its return is a change. */
export const ABSENT = 'absent'
