import t from 'tap'
import { startDevIdp } from '../../dev/idp.js'
import { buildTestApp, UNREACHABLE_ISSUER } from '../helpers/app.js'
import { CLIENT_ID, CLIENT_SECRET } from '../helpers/gateway.js'

t.test('/readyz reports each provider; one down leaves the instance in rotation, degraded', async (t) => {
  const corp = await startDevIdp({
    clients: [
      {
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        redirectUris: ['http://127.0.0.1:3000/auth/callback'],
      },
    ],
  })
  t.teardown(() => corp.close())
  const app = await buildTestApp(t, {
    identityProviders: [
      { name: 'corp', issuer: corp.issuer },
      { name: 'partner', issuer: UNREACHABLE_ISSUER },
    ],
  })
  // Discovery runs in the background and partner never answers: corp's is awaited here.
  await app.gatehouse.providers.get('corp')!.discover()
  const ready = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 200, 'corp works: the instance serves its sessions')
  t.same(ready.json(), {
    status: 'degraded',
    checks: { 'idp:corp': 'ok', 'idp:partner': 'not discovered', store: 'ok', clientAuth: 'ok' },
  })
  const login = await app.inject({ method: 'GET', url: '/auth/login?idp=partner&returnTo=/' })
  t.equal(login.statusCode, 503, "partner's sign-in waits for partner")
  t.equal((await app.inject({ method: 'GET', url: '/auth/login?idp=corp&returnTo=/' })).statusCode, 302)
})

t.test('/readyz is not ready when no provider works', async (t) => {
  const app = await buildTestApp(t, {
    identityProviders: [
      { name: 'corp', issuer: UNREACHABLE_ISSUER },
      { name: 'partner', issuer: UNREACHABLE_ISSUER },
    ],
  })
  const ready = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 503)
  t.equal(ready.json().status, 'not_ready')
  t.same(ready.json().checks['idp:corp'], 'not discovered')
  t.same(ready.json().checks['idp:partner'], 'not discovered')
})
