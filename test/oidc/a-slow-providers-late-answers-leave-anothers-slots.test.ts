/**
 * A refresh slower than `oidc.timeout` is still awaited, so the refresh
 * token the IdP rotated meanwhile is not lost (late-answer.ts); at most
 * MAX_LATE_ANSWERS at once. That bound was one for the whole process: a
 * slow or hostile provider whose every refresh timed out held every slot,
 * and a refresh of another provider's session that timed out meanwhile
 * was given up at its timeout, its rotated refresh token lost, so the
 * session's next redemption was a replay and its IdP revoked the grant.
 *
 * Two token endpoints on real sockets: partner holds every refresh open
 * (a thousand sessions' worth, without a thousand sign-ins), corp answers
 * one a little past the timeout.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import t from 'tap'
import { OidcClient } from '../../src/oidc/client.js'
import { lateAnswerOf, MAX_LATE_ANSWERS } from '../../src/oidc/late-answer.js'
import { testConfig } from '../helpers/gateway.js'
import { serveHttp } from '../helpers/http-server.js'
import { metadata } from '../helpers/mock-idp.js'

/** Each refresh gives up waiting at this, ms, and listens for its answer up to LATE_WAIT more. */
const TIMEOUT = 200
const LATE_WAIT = 30_000

const tokens = (refreshToken: string) => ({
  access_token: `access-for-${refreshToken}`,
  token_type: 'Bearer',
  expires_in: 300,
  refresh_token: refreshToken,
})

const current = (refreshToken: string) => ({
  accessToken: 'expired',
  accessTokenExpiresAt: Date.now() - 1_000,
  refreshToken,
})

/** An IdP whose token endpoint `answer`s; its discovery document names its own endpoints. */
async function provider(answer: (response: ServerResponse) => void) {
  let issuer = ''
  issuer = await serveHttp(t, (request: IncomingMessage, response: ServerResponse) => {
    request.resume()
    if (request.url === '/.well-known/openid-configuration') {
      const document = { ...metadata(), issuer, token_endpoint: `${issuer}/token` }
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(document))
    } else if (request.url === '/token') request.on('end', () => answer(response))
    else response.writeHead(404).end()
  })
  const config = testConfig({
    port: 8080,
    issuer,
    routes: [],
    oidc: { timeout: TIMEOUT, lateAnswerWait: LATE_WAIT, userinfo: false },
  })
  const client = new OidcClient(config)
  t.teardown(() => client.close())
  // Discovery takes the same short timeout, which a loaded CI machine's
  // first connection can outlast; only the refreshes are under test.
  for (let tries = 1; ; tries++) {
    try {
      await client.discover()
      return client
    } catch (err) {
      if (tries === 5) throw err
    }
  }
}

t.test("a provider holding every late answer it may leaves another provider's refresh awaited", async (t) => {
  // Partner takes every refresh and never answers while the test runs.
  const partner = await provider(() => {})
  const corp = await provider((response) => {
    setTimeout(() => {
      response
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify(tokens('corp-rotated')))
    }, TIMEOUT * 3)
  })
  const held = await Promise.allSettled(
    Array.from({ length: MAX_LATE_ANSWERS }, (_, i) => partner.refresh(current(`partner-${i}`))),
  )
  const awaited = held.filter((r) => r.status === 'rejected' && lateAnswerOf(r.reason) !== undefined)
  t.equal(awaited.length, MAX_LATE_ANSWERS, "partner's refreshes are all awaited past their timeout")

  const err = await corp.refresh(current('corp-spent')).catch((e: unknown) => e)
  t.match(err, { code: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE' }, 'the caller hears of the timeout')
  const late = lateAnswerOf<{ refreshToken?: string }>(err)
  t.ok(late, "corp's answer is still awaited, though partner holds its every slot")
  t.equal((await late)?.tokens?.refreshToken, 'corp-rotated', 'and its rotated refresh token is kept')
})
