import t, { type Test } from 'tap'
import { OidcClient } from '../../src/oidc/client.js'
import { IdentityProviders, ProviderNamesHad, registrations } from '../../src/oidc/providers.js'
import { CLIENT_ID, type TestProvider, testConfig } from '../helpers/gateway.js'

/**
 * Which provider a session's calls may go to: the one of its name, and only
 * while that provider has the issuer and client id that issued the
 * session's tokens. What a reload makes of a name decides nothing else.
 */

const A = 'https://a.idp.example'
const B = 'https://b.idp.example'

/** The clients of a config with these providers; nothing is discovered, nothing is called. */
function clientsOf(t: Test, providers: readonly TestProvider[]): OidcClient[] {
  const config = testConfig({ port: 3000, issuer: A, routes: [], identityProviders: providers })
  const clients = config.identityProviders.map(
    (provider) => new OidcClient(config, Date.now, {}, undefined, provider),
  )
  t.teardown(() => Promise.all(clients.map((client) => client.close())))
  return clients
}

const asStarted = (t: Test) =>
  clientsOf(t, [
    { name: 'a', issuer: A },
    { name: 'b', issuer: B },
  ])

t.test("a session's provider is the one of its name while that has the session's registration", async (t) => {
  const providers = new IdentityProviders(asStarted(t))
  const a = providers.get('a')!
  t.same(a.registration, { issuer: `${A}/`, clientId: CLIENT_ID }, 'the issuer as the client reads it')
  t.equal(providers.ofSession({ idp: 'a', registration: a.registration }), a)
  t.equal(
    providers.ofSession({ idp: 'b', registration: a.registration }),
    undefined,
    "a name with another's registration is not that session's provider",
  )
  t.equal(providers.ofSession({ idp: 'gone', registration: a.registration }), undefined, 'nor is no provider')
})

t.test(
  'a reload that gives the name another issuer, or another client id, leaves its sessions no provider',
  async (t) => {
    const started = asStarted(t)
    const before = started[0]!.registration
    for (const [what, a] of [
      ['another issuer', { name: 'a', issuer: B }],
      ['another client id at the same issuer', { name: 'a', issuer: A, clientId: 'another-client' }],
    ] as const) {
      const reloaded = new IdentityProviders(clientsOf(t, [a]), registrations(started))
      t.equal(reloaded.ofSession({ idp: 'a', registration: before }), undefined, what)
      t.equal(
        reloaded.ofSession({ idp: 'a' }),
        undefined,
        `${what}: and none for one sealed before registrations were`,
      )
      t.throws(
        () => reloaded.of({ idp: 'a', registration: before }),
        {
          code: 'GATEHOUSE_ERR_SESSION_EXPIRED',
          message: /now has another issuer or client id, which did not issue its tokens/,
        },
        `${what}: a refresh ends the session, and goes nowhere`,
      )
    }
    const removed = new IdentityProviders(clientsOf(t, [{ name: 'b', issuer: B }]), registrations(started))
    t.throws(() => removed.of({ idp: 'a', registration: before }), {
      code: 'GATEHOUSE_ERR_SESSION_EXPIRED',
      message: /no longer configured/,
    })
  },
)

t.test(
  'a session sealed before registrations were recorded is of its provider as the process started with it',
  async (t) => {
    const started = asStarted(t)
    const first = new IdentityProviders(started)
    t.equal(
      first.ofSession({ idp: 'a' }),
      first.get('a'),
      'the first config is the one the process started with',
    )
    // A reload that keeps `a` as it was and adds `c`.
    const kept = new IdentityProviders(
      clientsOf(t, [
        { name: 'a', issuer: A },
        { name: 'c', issuer: B },
      ]),
      registrations(started),
    )
    t.equal(kept.ofSession({ idp: 'a' }), kept.get('a'), 'kept as it was: still its provider')
    t.equal(
      kept.ofSession({ idp: 'c' }),
      undefined,
      'a name the process did not start with made none of them',
    )
    t.equal(
      kept.only(['c', 'a']).ofSession({ idp: 'a' }),
      kept.get('a'),
      "a frontend's providers judge alike",
    )
    t.equal(kept.only(['c', 'a']).default, kept.get('c'), 'in its own order')
  },
)

t.test(
  "a logout's sessions are under every name with the client's issuer and client id, in any frontend, now or at start",
  async (t) => {
    // Started with `a` and `old` at A's client, and `b` at B.
    const started = clientsOf(t, [
      { name: 'a', issuer: A },
      { name: 'old', issuer: A },
      { name: 'b', issuer: B },
    ])
    // A reload removed `old`, and added `a2` (the same client as `a`, with
    // other parameters, in a frontend of its own) and `other` (another
    // client of the same issuer).
    const reloaded = new IdentityProviders(
      clientsOf(t, [
        { name: 'a', issuer: A },
        { name: 'a2', issuer: A, scopes: ['openid', 'offline_access'] },
        { name: 'other', issuer: A, clientId: 'another-client' },
        { name: 'b', issuer: B },
      ]),
      registrations(started),
    )
    const client = reloaded.get('a')!.registration
    const frontend = reloaded.only(['a'])
    t.same(
      frontend.namesOf(client).sort(),
      ['a', 'a2', 'old'],
      "a frontend that lists `a` alone finds `a2`'s sessions too, and those `old` made",
    )
    t.same(reloaded.namesOf(reloaded.get('other')!.registration), ['other'])
    t.same(reloaded.namesOf(reloaded.get('b')!.registration), ['b'])

    t.ok(frontend.issuedAs('a2', client, client), 'a session of `a2` that recorded the client')
    t.ok(frontend.issuedAs('old', undefined, client), 'one `old` sealed before registrations were')
    t.notOk(
      frontend.issuedAs('a2', undefined, client),
      'one sealed before, of a name the process did not start with: not known to be that client',
    )
    t.notOk(frontend.issuedAs('a', reloaded.get('other')!.registration, client), "another client's")
  },
)

t.test(
  "a session's token is renewed for a certificate this process presented to the issuer before a reload, never for one it did not",
  async (t) => {
    const config = testConfig({
      port: 3000,
      issuer: A,
      routes: [],
      identityProviders: [{ name: 'a', issuer: A }],
    })
    // Only the certificate's facts are read here; no call is made.
    const presenting = (fingerprint256: string) => {
      const provider = {
        ...config.identityProviders[0]!,
        tls: { certificate: { source: 'client.crt', subject: 'CN=gatehouse', notAfter: 0, fingerprint256 } },
      }
      const client = new OidcClient(config, Date.now, {}, undefined, provider)
      t.teardown(() => client.close())
      return [client]
    }
    const had = new ProviderNamesHad()
    const before = new IdentityProviders(presenting('OLD'), undefined, undefined, had)
    const session = { idp: 'a', registration: before.get('a')!.registration }
    t.equal(before.certificateChanged(session, 'OLD'), false, 'the certificate in use')
    t.equal(
      before.certificateChanged(session, 'NEW'),
      false,
      "a replica's, which the reload reached first: refreshing here too would spend a refresh at each request that alternates between them",
    )
    const renewed = new IdentityProviders(presenting('NEW'), undefined, undefined, had)
    t.equal(renewed.certificateChanged(session, 'OLD'), true, 'the one the reload renewed')
    t.equal(renewed.certificateChanged(session, 'NEW'), false)
    t.equal(
      renewed.certificateChanged({ idp: 'gone', registration: session.registration }, 'OLD'),
      false,
      "a removed provider's session is judged as ever, ending when its token is due",
    )
  },
)

t.test(
  "a certificate another client of the same issuer presents is not one this provider's reload renewed",
  async (t) => {
    // Two clients at one IdP, each with its certificate. A replica whose
    // file gives `a` the certificate `b` presents here requests `a`'s tokens
    // with it: counted by issuer alone, this process took it for one `a`
    // had presented and refreshed the token, and the replica, which had
    // presented this one's before its reload, refreshed it back, a refresh
    // at each request that alternated between them.
    const config = testConfig({
      port: 3000,
      issuer: A,
      routes: [],
      identityProviders: [
        { name: 'a', issuer: A },
        { name: 'b', issuer: A, clientId: 'another-client' },
      ],
    })
    const clients = config.identityProviders.map((provider, i) => {
      const tls = {
        certificate: {
          source: 'client.crt',
          subject: 'CN=gatehouse',
          notAfter: 0,
          fingerprint256: `CERT-${i}`,
        },
      }
      const client = new OidcClient(config, Date.now, {}, undefined, { ...provider, tls })
      t.teardown(() => client.close())
      return client
    })
    const providers = new IdentityProviders(clients, undefined, undefined, new ProviderNamesHad())
    const session = { idp: 'a', registration: providers.get('a')!.registration }
    t.equal(providers.certificateChanged(session, 'CERT-0'), false, "a's own")
    t.equal(providers.certificateChanged(session, 'CERT-1'), false, "b's, which a never presented here")
  },
)
