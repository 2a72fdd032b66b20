/**
 * An IdP moves its mTLS endpoint aliases (RFC 8705 §5) while the gateway
 * runs, and a reload changes the provider's entry (its scopes) without its
 * issuer or `tls`: the new client starts from the document in hand, which
 * names the old aliases, and is discovered again with the reload. Every
 * call after it (refresh, client credentials, revocation) must go to the
 * aliases the provider names now, with the client certificate; the old
 * terminator is gone, so a call sent there fails.
 */
import t from 'tap'
import type { DevIdp } from '../../dev/idp.js'
import { makePki } from '../helpers/certificates.js'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { type MtlsFront, startMtlsFront } from '../helpers/mtls-front.js'
import { configText, startReloadable } from '../helpers/reloadable.js'

const aliasesAt = (front: MtlsFront) => ({
  token_endpoint: `${front.url}/token`,
  revocation_endpoint: `${front.url}/token/revocation`,
  userinfo_endpoint: `${front.url}/me`,
})

t.test(
  'aliases the provider moved are used after a reload that starts its new client from the document in hand',
  async (t) => {
    const pki = makePki(t)
    const server = pki.issue('idp-mtls')
    const certificate = pki.issue('gatehouse-client')
    let idp: DevIdp | undefined
    const front = () =>
      startMtlsFront(() => Number(new URL(idp!.issuer).port), {
        cert: server.cert,
        key: server.key,
        ca: pki.ca.cert,
      })
    const [before, after] = [await front(), await front()]
    t.teardown(() => Promise.all([before.close(), after.close()]))
    const clock = new TestClock()
    const s = await startReloadable(
      t,
      (upstream) => [
        route('/api/orders', upstream),
        route('/api/reports', upstream, { token: 'client', scopes: ['reports.read'] }),
      ],
      {
        watch: false,
        now: clock.now,
        idp: { mtls: {}, discovery: { mtls_endpoint_aliases: aliasesAt(before) } },
        client: { certificateBoundAccessTokens: true },
        input: {
          oidc: {
            tls: {
              cert: { file: certificate.certFile },
              key: { file: certificate.keyFile },
              ca: { file: pki.ca.certFile },
            },
          },
        },
      },
    )
    idp = s.idp
    const verified: string[] = []
    s.idp.provider.on('grant.success', (ctx) =>
      verified.push(`${ctx.get('x-client-verify')} ${ctx.oidc.params?.grant_type}`),
    )
    const { jar, callback } = await login(s.url)
    t.equal(callback.status, 302, 'signed in through the first aliases')
    const running = s.running.app.gatehouse.oidc

    s.idp.advertise({ mtls_endpoint_aliases: aliasesAt(after) })
    s.configMap.write(configText({ ...s.input, oidc: { ...s.input.oidc, scopes: ['openid', 'profile'] } }))
    t.match(await s.running.reload(), { result: 'applied' })
    const client = s.running.app.gatehouse.oidc
    t.not(client, running, 'the provider has a new client')
    t.same(
      client.metadata?.mtls_endpoint_aliases,
      aliasesAt(after),
      'holding the aliases the provider names now',
    )
    await before.close()

    clock.advance(61_000)
    t.equal((await apiCall(jar, `${s.url}/api/orders`)).status, 200, 'the refresh goes to the moved alias')
    t.equal((await apiCall(jar, `${s.url}/api/reports`)).status, 200, 'and so do client credentials')
    const user = (await apiCall(jar, `${s.url}/auth/user`)).json<{ logoutUrl: string }>()
    t.equal((await jarFetch(jar, `${s.url}${user.logoutUrl}`)).status, 200)
    t.equal(s.idp.stats.revocations, 1, 'and the revocation')
    t.same(
      verified,
      ['SUCCESS authorization_code', 'SUCCESS refresh_token', 'SUCCESS client_credentials'],
      'each grant with a verified certificate',
    )
    t.equal(s.idp.stats.refreshReplays, 0)
  },
)
