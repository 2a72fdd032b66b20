/**
 * An IdP that sends its answer's head at once and then a byte at a time,
 * each well within undici's `bodyTimeout` (which counts the time between
 * two chunks, not the whole body): every call still fails at `oidc.timeout`,
 * the total budget its AbortSignal carries, and a refresh's answer, still
 * awaited for the rotated refresh token it may carry (late-answer.ts), is
 * given up `oidc.lateAnswerWait` later, its connection closed. The failure
 * is a timeout, so transient: 503 with Retry-After, the session kept.
 * Held; no test dripped an answer before.
 */
import type { Socket } from 'node:net'
import t, { type Test } from 'tap'
import { OidcClient } from '../../src/oidc/client.js'
import { idpFailureOf } from '../../src/oidc/translate.js'
import { testConfig } from '../helpers/gateway.js'
import { NOT_FOUND, rawUpstream } from '../helpers/http-server.js'
import { within } from '../helpers/within.js'

const TIMEOUT = 1_000 // ms, oidc.timeout
const LATE = 500 // ms, oidc.lateAnswerWait

/** An IdP whose token endpoint writes its head, then a byte of its body every 100 ms, for ever. */
async function drippingIdp(t: Test) {
  let issuer = ''
  const drips = new Set<NodeJS.Timeout>()
  const closed: Promise<number>[] = []
  t.teardown(() => {
    for (const drip of drips) clearInterval(drip)
  })
  const server = await rawUpstream(t, (path: string, socket: Socket) => {
    if (path === '/.well-known/openid-configuration') {
      const body = JSON.stringify({
        issuer,
        authorization_endpoint: `${issuer}/auth`,
        token_endpoint: `${issuer}/token`,
        id_token_signing_alg_values_supported: ['RS256'],
      })
      return `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`
    }
    if (path !== '/token') return NOT_FOUND
    socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n')
    const drip = setInterval(() => {
      if (socket.destroyed) clearInterval(drip)
      else socket.write('1\r\n \r\n')
    }, 100)
    drips.add(drip)
    closed.push(new Promise((resolve) => socket.once('close', () => resolve(performance.now()))))
    return undefined
  })
  issuer = server.url
  const oidc = new OidcClient(
    testConfig({ port: 8080, issuer, routes: [], oidc: { timeout: TIMEOUT, lateAnswerWait: LATE } }),
    Date.now,
    {},
  )
  t.teardown(() => oidc.close())
  await oidc.discover()
  return { oidc, closed }
}

t.test('client credentials: a dripped answer ends at oidc.timeout, a timeout', async (t) => {
  const { oidc, closed } = await drippingIdp(t)
  const started = performance.now()
  const err = await oidc.clientCredentials([]).catch((e: unknown) => e)
  const took = performance.now() - started
  t.ok(took >= TIMEOUT - 50 && took < TIMEOUT + 1_000, `ended after ${Math.round(took)} ms`)
  t.match(err, { code: 'GATEHOUSE_ERR_CLIENT_TOKEN_UNAVAILABLE' })
  t.match(idpFailureOf(err), { answer: 'timeout', verdict: 'unavailable', reason: /oidc\.timeout/ })
  const hungUp = (await within(closed[0]!, 'the dripping connection closed')) - started
  t.ok(hungUp < TIMEOUT + 1_000, `the gateway hung up after ${Math.round(hungUp)} ms`)
})

t.test('refresh: a dripped answer fails at oidc.timeout, and is given up lateAnswerWait later', async (t) => {
  const { oidc, closed } = await drippingIdp(t)
  const started = performance.now()
  const err = await oidc
    .refresh({ accessToken: 'a', accessTokenExpiresAt: 0, accessTokenLifetime: 1, refreshToken: 'r' })
    .catch((e: unknown) => e)
  const took = performance.now() - started
  t.ok(took >= TIMEOUT - 50 && took < TIMEOUT + 1_000, `the caller was told after ${Math.round(took)} ms`)
  t.match(err, { code: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE' })
  t.match(idpFailureOf(err), { answer: 'timeout', verdict: 'unavailable' })
  const hungUp = (await within(closed[0]!, 'the dripping connection closed')) - started
  t.ok(
    hungUp >= TIMEOUT + LATE - 50 && hungUp < TIMEOUT + LATE + 1_000,
    `the answer was given up after ${Math.round(hungUp)} ms`,
  )
})
