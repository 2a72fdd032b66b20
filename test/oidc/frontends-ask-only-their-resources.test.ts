import t, { type Test } from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { apiCall, followLoginFlow, jarFetch } from '../helpers/login.js'
import { type FrontendChoices, startTwoFrontends, type TwoFrontends } from '../helpers/two-frontends.js'

const CORP_API = 'https://api.corp.example'
const PARTNER_API = 'https://api.partner.example'
const PARTNER_REPORTS = 'https://reports.partner.example'

/**
 * RFC 8707 §2: the login asks for the resources of the routes its session
 * may call, and a provider refuses the whole request (`invalid_target`)
 * for one it does not know. Each frontend's routes are for its own
 * providers' sessions only: the login at one provider must not ask for
 * the resources of a frontend that does not sign in with it. It did:
 * every login asked every provider for every frontend's resources, and
 * with two providers that each know only their own API, no one could sign in.
 */
const apis: FrontendChoices = (upstream) => ({
  staff: { identityProviders: ['corp'], routes: [route('/api', upstream, { resource: CORP_API })] },
  partners: {
    identityProviders: ['partner'],
    routes: [route('/api', upstream, { resource: PARTNER_API })],
  },
})

/** Signs in at a frontend (at its first provider, or `idp`): the resources its authorization request named, the jar and the callback. */
async function signIn(t: Test, base: string, idp?: string) {
  const jar = new CookieJar()
  const start = await jarFetch(jar, `${base}/auth/login${idp === undefined ? '' : `?idp=${idp}`}`)
  t.equal(start.status, 302, `${base}/auth/login sends the browser to the IdP`)
  const asked = new URL(start.location!).searchParams.getAll('resource')
  const callback = await jarFetch(jar, await followLoginFlow(jar, start.location!, 'alice'))
  return { jar, asked, callback }
}

/** The audience of the token the upstream saw last, as the IdP that issued it knows it. */
async function lastAudience(s: TwoFrontends, idp: 'corp' | 'partner'): Promise<unknown> {
  const seen = s.upstream.requests.at(-1)?.authorization?.replace(/^Bearer /, '')
  return seen === undefined ? undefined : (await s[idp].introspect(seen)).aud
}

t.test("each frontend's login asks its provider only for the resources of its own routes", async (t) => {
  const s = await startTwoFrontends(t, apis, {
    idp: (name) => ({
      resourceIndicators: {
        resources:
          // corp knows the partners API too: only what it is asked for tells.
          name === 'corp'
            ? { [CORP_API]: { scopes: [] }, [PARTNER_API]: { scopes: [] } }
            : { [PARTNER_API]: { scopes: [] }, [PARTNER_REPORTS]: { scopes: [] } },
      },
    }),
  })

  const staff = await signIn(t, s.staff)
  t.same(staff.asked, [CORP_API], "corp is asked for the staff routes' resources only")
  t.equal(staff.callback.status, 302, 'and the staff user is signed in')
  const partners = await signIn(t, s.partners)
  t.same(partners.asked, [PARTNER_API], 'partner is asked for the partners routes only')
  t.equal(partners.callback.status, 302, 'and the partner user is signed in')

  t.equal((await apiCall(staff.jar, `${s.staff}/api/x`)).status, 200)
  t.equal(await lastAudience(s, 'corp'), CORP_API, "the staff upstream gets corp's token for its resource")
  t.equal((await apiCall(partners.jar, `${s.partners}/api/x`)).status, 200)
  t.equal(await lastAudience(s, 'partner'), PARTNER_API, "the partners upstream gets partner's")

  t.test('a reload recomputes what each provider is asked for', async (t) => {
    // Nothing of the routes changes, only who signs in at partners: corp's
    // sessions may now call the partners API, so its logins ask for it.
    const corpAtPartners: FrontendChoices = (upstream) => ({
      ...apis(upstream),
      partners: { ...apis(upstream).partners, identityProviders: ['partner', 'corp'] },
    })
    t.match(await s.reload(corpAtPartners), { result: 'applied' })
    // A provider's resources are the provider's, wherever its login starts.
    for (const base of [s.staff, s.partners]) {
      const corp = await signIn(t, base, 'corp')
      t.same(corp.asked.sort(), [CORP_API, PARTNER_API], `${base}: corp is asked for the partners API now`)
    }
    const corp = await signIn(t, s.partners, 'corp')
    t.equal((await apiCall(corp.jar, `${s.partners}/api/x`)).status, 200)
    t.equal(await lastAudience(s, 'corp'), PARTNER_API, "and its session gets corp's token for it")
    t.same((await signIn(t, s.partners)).asked, [PARTNER_API], 'partner is asked as before')

    // The reports route is partner's: its logins ask for it, corp's do not.
    t.match(
      await s.reload((upstream) => ({
        ...corpAtPartners(upstream),
        partners: {
          identityProviders: ['partner', 'corp'],
          routes: [
            route('/api', upstream, { resource: PARTNER_API }),
            route('/reports', upstream, { resource: PARTNER_REPORTS, identityProviders: ['partner'] }),
          ],
        },
      })),
      { result: 'applied' },
    )
    const refused = await apiCall(partners.jar, `${s.partners}/reports/x`)
    t.equal(refused.status, 403, 'a session signed in before is refused the new resource')
    t.match(refused.json(), { error: 'resource_refused' })
    t.same((await signIn(t, s.partners, 'corp')).asked.sort(), [CORP_API, PARTNER_API])
    const again = await signIn(t, s.partners)
    t.same(again.asked.sort(), [PARTNER_API, PARTNER_REPORTS])
    t.equal((await apiCall(again.jar, `${s.partners}/reports/x`)).status, 200)
    t.equal(await lastAudience(s, 'partner'), PARTNER_REPORTS, 'which a new sign-in is granted')
  })
})
