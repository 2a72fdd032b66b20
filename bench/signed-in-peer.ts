import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startDevIdp } from '../dev/idp.js'
import { login } from '../test/helpers/login.js'
import { onFreePorts } from '../test/helpers/ports.js'
import { type PeerProcess, spawnPeer } from './peers.js'

const root = fileURLToPath(new URL('..', import.meta.url))

/** What the ceiling is sent: a cookie and the anti-forgery header of a signed-in call's size. */
export const CEILING_HEADERS: Readonly<Record<string, string>> = {
  cookie: `gatehouse=${'a'.repeat(160)}`,
  'x-csrf': '1',
}

export interface SignedInGatehouse {
  readonly peer: PeerProcess
  /** A signed-in SPA's API call: its session cookie and `x-csrf`. */
  readonly headers: Record<string, string>
  /** Stops the peer and its IdP. */
  stop(): Promise<void>
}

/**
 * Gatehouse from `bench/gatehouse.yaml` (memory store) in front of
 * `upstream`, with a dev IdP of its own, signed in once: the peer that
 * `bench/components.ts` and `bench/allocations.ts` load.
 */
export async function signedInGatehouse(upstream: string): Promise<SignedInGatehouse> {
  const clientSecret = randomBytes(24).toString('base64url')
  const { peer, idp } = await onFreePorts(1, async ([port]) => {
    const idp = await startDevIdp({
      accessTokenTtl: 3600,
      clients: [
        {
          clientId: 'gatehouse-bench',
          clientSecret,
          redirectUris: [`http://127.0.0.1:${port}/auth/callback`],
        },
      ],
    })
    const peer = await spawnPeer(['gatehouse', join(root, 'bench', 'gatehouse.yaml')], {
      env: {
        GATEHOUSE_PORT: String(port),
        BENCH_ISSUER: idp.issuer,
        BENCH_CLIENT_SECRET: clientSecret,
        BENCH_SESSION_SECRET: randomBytes(32).toString('base64url'),
        BENCH_STORE: 'memory',
        BENCH_UPSTREAM: upstream,
      },
    }).catch(async (err) => {
      await idp.close()
      throw err
    })
    return { peer, idp }
  })
  try {
    const signedIn = await login(peer.url, { user: 'bench' })
    return {
      peer,
      headers: { cookie: `gatehouse=${signedIn.jar.get(peer.url, 'gatehouse')}`, 'x-csrf': '1' },
      async stop() {
        await peer.stop()
        await idp.close()
      },
    }
  } catch (err) {
    await peer.stop()
    await idp.close()
    throw err
  }
}
