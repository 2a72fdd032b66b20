/**
 * A reload that turns `profile: fapi2` on (or `par: required`, or `dpop`
 * with an algorithm the provider does not take) for a provider the gateway
 * has discovered starts its new client from the document in hand
 * (provider-clients.ts), without waiting for the IdP. A config that `check`
 * refuses is refused as ever; one that passes it but cannot sign in
 * against that document (what `check --online` calls blocking) was put in
 * use: every new sign-in then answered 503 `idp_incompatible`, and no line
 * said why, since the rediscovery that follows found the same document.
 */
import { generateKeyPairSync } from 'node:crypto'
import t, { type Test } from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { jarFetch } from '../helpers/login.js'
import { configText, LogLines, type Reloadable, startReloadable } from '../helpers/reloadable.js'

const REJECTED = 'GATEHOUSE_CONFIG_RELOAD_REJECTED'

const clientKey = {
  jwk: {
    ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }),
    alg: 'ES256',
    kid: 'bff-1',
  },
}

async function stack(t: Test, idp: { par?: boolean } = {}) {
  const log = new LogLines()
  const s = await startReloadable(t, (upstream) => [route('/api/orders', upstream)], {
    watch: false,
    idp,
    logStream: log.stream,
    input: { logLevel: 'info', idpTimeout: 2_000 },
  })
  return { s, log }
}

/** Where a new sign-in goes: its status, and the host it is sent to. */
async function signIn(s: Reloadable) {
  const answer = await jarFetch(new CookieJar(), `${s.url}/auth/login`)
  return { status: answer.status, to: answer.location && new URL(answer.location).origin }
}

function reloadWith(s: Reloadable, oidc: NonNullable<Reloadable['input']['oidc']>) {
  s.configMap.write(configText({ ...s.input, oidc: { ...s.input.oidc, ...oidc } }))
  return s.running.reload()
}

t.test(
  'profile fapi2 turned on by reload with a shared secret is refused, as check refuses it',
  async (t) => {
    const { s } = await stack(t)
    const result = await reloadWith(s, { profile: 'fapi2' })
    t.equal(result.result, 'rejected')
    t.match(
      'problems' in result ? result.problems.map((p) => `${p.path}: ${p.message}`) : [],
      [/^oidc\.clientAuth: profile fapi2 allows private_key_jwt/],
      'the problem is named with its option',
    )
    t.same(await signIn(s), { status: 302, to: new URL(s.idp.issuer).origin }, 'the running config signs in')
  },
)

t.test(
  'profile fapi2 turned on by reload, which the document in hand cannot serve, is refused naming why',
  async (t) => {
    // PAR advertised, which the profile requires: what FAPI 2.0 asks beyond it is missing.
    const { s, log } = await stack(t, { par: true })
    const client = s.running.app.gatehouse.oidc
    const result = await reloadWith(s, {
      profile: 'fapi2',
      clientAuth: 'private_key_jwt',
      clientSecret: undefined,
      clientKey,
      dpop: true,
    })
    t.equal(result.result, 'rejected', 'the reload is refused')
    t.match(
      'problems' in result ? result.problems : [],
      [{ path: 'oidc', message: /profile fapi2, but the identity provider .*; the running config is kept/ }],
      'naming the provider option and the reason',
    )
    t.match(
      log.lines.filter((l) => l.code === REJECTED).map((l) => l.msg),
      [/oidc: .*profile fapi2, but the identity provider/, /has 1 problem/],
      'in the log too',
    )
    t.equal(s.running.app.gatehouse.oidc, client, 'the running client stays')
    t.same(await signIn(s), { status: 302, to: new URL(s.idp.issuer).origin }, 'and signs in')
  },
)

t.test('dpop turned on by reload with an algorithm the provider does not list is refused', async (t) => {
  const { s } = await stack(t)
  s.idp.advertise({ dpop_signing_alg_values_supported: ['PS256'] })
  // The running config, DPoP off, is not troubled by it.
  t.equal((await s.running.reload()).result, 'unchanged')
  const result = await reloadWith(s, { dpop: true, dpopAlgorithm: 'ES256' })
  t.equal(result.result, 'rejected')
  t.match('problems' in result ? result.problems : [], [
    {
      path: 'oidc',
      message: /dpopAlgorithm: ES256, but the identity provider's dpop_signing_alg_values_supported is PS256/,
    },
  ])
  t.equal((await signIn(s)).status, 302)

  // Once the provider lists it, the same file applies.
  s.idp.advertise()
  t.equal((await s.running.reload()).result, 'applied', 'the same file applies once the provider takes it')
  t.equal((await signIn(s)).status, 302)
})

t.test(
  'a reload that changes something else keeps a provider its IdP has made incompatible since, and applies',
  async (t) => {
    const { s } = await stack(t)
    const result = await reloadWith(s, { dpop: true, dpopAlgorithm: 'ES256' })
    t.equal(result.result, 'applied')
    s.idp.advertise({ dpop_signing_alg_values_supported: ['PS256'] })
    t.equal((await s.running.reload()).result, 'unchanged')
    t.equal((await signIn(s)).status, 503, 'the provider changed: sign-in is refused')
    // A change to the same provider's entry, which stays incompatible: not the file's doing.
    t.equal(
      (await reloadWith(s, { dpop: true, dpopAlgorithm: 'ES256', scopes: ['openid', 'profile'] })).result,
      'applied',
    )
  },
)

t.test(
  'a reload that changes something else applies when the IdP made the provider incompatible and no reload has heard it yet',
  async (t) => {
    const { s } = await stack(t)
    t.equal((await reloadWith(s, { dpop: true, dpopAlgorithm: 'ES256' })).result, 'applied')
    // The IdP drops the algorithm, and no reload has discovered it since: the
    // running client still holds the document that listed it.
    s.idp.advertise({ dpop_signing_alg_values_supported: ['PS256'] })
    const result = await reloadWith(s, { dpop: true, dpopAlgorithm: 'ES256', scopes: ['openid', 'profile'] })
    t.equal(
      result.result,
      'applied',
      "the IdP's doing, found by this reload's rediscovery, holds back no change of the file",
    )
    t.equal((await signIn(s)).status, 503, 'the new client knows the provider changed')
  },
)

t.test(
  'dpop turned on by reload is refused when the IdP stopped listing its algorithm before any reload heard it',
  async (t) => {
    const { s } = await stack(t)
    // The running entry, DPoP off, signs in against either document: the file's change is what breaks sign-in.
    s.idp.advertise({ dpop_signing_alg_values_supported: ['PS256'] })
    const result = await reloadWith(s, { dpop: true, dpopAlgorithm: 'ES256' })
    t.equal(result.result, 'rejected')
    t.match('problems' in result ? result.problems : [], [{ path: 'oidc', message: /dpopAlgorithm: ES256/ }])
    t.equal((await signIn(s)).status, 302, 'the running config signs in')
  },
)
