import { parseYaml } from '../config/document.js'
import { interpolate } from '../config/env.js'
import { ConfigError } from '../config/errors.js'
import { parseConfig } from '../config/load.js'
import { readConfigFileSync } from '../config/read.js'
import { DEFAULTS } from '../config/schema.js'
import { documentValues } from '../config/yaml-values.js'

/** Where a gateway listens: `server.host` and `server.port`. */
export interface ListenAddress {
  readonly host: string
  readonly port: number
}

/**
 * Where the gateway started from `file` listens, for the health probe. A
 * file that no longer validates is most often an edit the running gateway
 * refused to reload, keeping its config and staying healthy (docs/deployment.md);
 * the probe then reads `server.host` and `server.port` alone, as written,
 * so a typo in a route does not make a healthy process look unhealthy, and
 * takes the defaults for what it cannot read. A file that cannot be read
 * at all throws, as `loadConfig` does: one missing, one that is not a
 * regular file (a FIFO would hold the probe until Docker killed it), one
 * larger than the gateway reads.
 */
export function listenAddress(file: string, env: NodeJS.ProcessEnv): ListenAddress {
  const text = readConfigFileSync(file).toString('utf8')
  try {
    return parseConfig(text, file, env, { onWarning: () => {} }).server
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
  }
  // The document keeps what parses beside a syntax error elsewhere (an
  // indentation slip in a route); `parse` would throw the whole file away.
  // Its values are read within the bounds of any config (yaml-values.ts).
  const { doc, lineCounter } = parseYaml(text)
  const values = doc === undefined ? undefined : documentValues(doc, lineCounter)
  const server = values?.complete ? (values.value as { server?: unknown } | null)?.server : undefined
  const written = isMapping(server) ? server : {}
  const host = resolved(written.host, env)
  const port = Number(resolved(written.port, env))
  return {
    host: host === undefined || host === '' ? DEFAULTS.host : host,
    port: Number.isInteger(port) && port > 0 && port < 65_536 ? port : DEFAULTS.port,
  }
}

function resolved(value: unknown, env: NodeJS.ProcessEnv): string | undefined {
  if (typeof value === 'number') return String(value)
  return typeof value === 'string' ? interpolate(value, env).value : undefined
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
