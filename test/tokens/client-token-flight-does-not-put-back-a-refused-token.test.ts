/**
 * A client-credentials token an upstream refused (401 `invalid_token`) is
 * replaced: dropped from the local and the shared copy, and fetched anew
 * (`ClientTokens.replaceRefused`). A request that asked for the token while
 * the replacement was under way read the shared copy before its drop, and
 * put the refused token back in the local copy, unconditionally, as every
 * flight's result was: it was sent with the refused token, and when the IdP
 * could not issue the replacement, every request after it was too, from a
 * local copy fresh for the rest of its hour. Now a refused token is never
 * taken back, from the shared copy or as the held token a failed renewal
 * falls back on.
 *
 * Against the real dev IdP (client_credentials), a real Redis (the shared
 * copy, the lock), and a real resource server that refuses revoked tokens.
 * The interleaving is the one Redis gives two commands sent in that order:
 * the replacement's read of the shared copy and the request's are answered
 * before the replacement's delete.
 */
import t, { type Test } from 'tap'
import { isGatehouseError } from '../../src/errors.js'
import { ClientTokens } from '../../src/tokens/client-tokens.js'
import { route } from '../helpers/gateway.js'
import { serveHttp } from '../helpers/http-server.js'
import { redisStoresOn, startRedis } from '../helpers/redis.js'
import { startReplicaSet } from '../helpers/replicas.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

const SCOPES = ['reports.read']

/** A resource server that asks the IdP whether a token is live: 200 if so, else 401 `invalid_token`. */
async function verifyingUpstream(t: Test, isActive: (token: string) => Promise<boolean>) {
  const base = await serveHttp(t, (req, res) => {
    req.resume()
    void isActive((req.headers.authorization ?? '').replace(/^Bearer /, '')).then((active) => {
      if (active) res.end('ok')
      else res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end()
    })
  })
  const url = `${base}/reports`
  return async (token: string) => (await fetch(url, { headers: { authorization: `Bearer ${token}` } })).status
}

/**
 * The client tokens of one instance, on the real Redis stores and the real
 * IdP's client-credentials grant, holding a token the upstream has just
 * refused (revoked at the IdP).
 */
async function holdingARefusedToken(t: Test, name: string) {
  const set = await startReplicaSet({
    keyPrefix: `${redis.prefix}${name}-gateway:`,
    count: 1,
    signIn: false,
    accessTokenTtl: 3_600,
    idp: { clientCredentialsTtl: 3_600 },
    routes: (to) => [route('/reports', to, { token: 'client', scopes: SCOPES, anonymous: true })],
  })
  t.teardown(() => set.close())
  const { idp } = set
  const stores = await redisStoresOn(t, redis.url, `${redis.prefix}${name}:`)
  const tokens = new ClientTokens({
    cache: stores.clientTokens,
    locks: stores.locks,
    oidc: set.apps[0]!.gatehouse.providers,
    refreshBefore: 30_000,
    refreshWait: 5_000,
    lockTtl: 10_000,
    now: Date.now,
  })
  const send = await verifyingUpstream(t, (token) => idp.isActive(token))
  const refused = (await tokens.token(SCOPES)).accessToken
  t.equal(await send(refused), 200, 'the first token is accepted')
  await (await idp.provider.ClientCredentials.find(refused))!.destroy()
  t.equal(await send(refused), 401, 'revoked at the IdP: refused')
  idp.resetStats()
  const replace = () => tokens.replaceRefused(SCOPES, false, undefined, refused, '/reports')
  return { idp, tokens, send, refused, replace }
}

t.test('a request during the replacement is not given the refused token', async (t) => {
  const { idp, tokens, send, refused, replace } = await holdingARefusedToken(t, 'served')
  // In one turn: the replacement's read of the shared copy goes first, the request's second.
  const replacing = replace()
  const during = tokens.token(SCOPES)
  const [replaced, taken] = await Promise.all([replacing, during])
  t.not(replaced?.accessToken, refused, 'replaced')
  t.not(taken.accessToken, refused, 'the request is not given the refused token')
  t.equal(taken.accessToken, replaced?.accessToken, 'but the replacement')
  t.equal(await send(taken.accessToken), 200, 'which the upstream accepts')
  t.equal(idp.stats.clientCredentialsGrants, 1, 'one grant for both')
  t.equal((await tokens.token(SCOPES)).accessToken, replaced?.accessToken, 'and the next request has it too')
})

t.test('a replacement the IdP cannot issue leaves no refused token to send', async (t) => {
  const { idp, tokens, refused, replace } = await holdingARefusedToken(t, 'unissued')
  idp.setFault('503')
  const replacing = replace().catch((err: unknown) => err)
  const during = tokens.token(SCOPES).catch((err: unknown) => err)
  const [replaced, taken] = await Promise.all([replacing, during])
  t.ok(isGatehouseError(replaced), 'the replacement fails: the IdP is down')
  t.ok(isGatehouseError(taken), 'so does the request meanwhile, not given the refused token')
  const after = await tokens.token(SCOPES).catch((err: unknown) => err)
  t.not((after as { accessToken?: string }).accessToken, refused, 'the next request is not given it')
  t.match(
    after,
    { code: 'GATEHOUSE_ERR_CLIENT_TOKEN_UNAVAILABLE' },
    'the next request is answered 503: the refused token was not taken back to send',
  )
})
