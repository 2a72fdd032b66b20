import t from 'tap'
import { FrontendMatcher } from '../src/frontend-match.js'

const staff = { name: 'staff', host: 'staff.example.com', pathPrefix: '' }
const staffAdmin = { name: 'staff-admin', host: 'staff.example.com', pathPrefix: '/admin' }
const portal = { name: 'portal', host: undefined, pathPrefix: '/portal' }
const portalShop = { name: 'shop', host: undefined, pathPrefix: '/portal/shop' }
const matcher = new FrontendMatcher([portal, staff, portalShop, staffAdmin])

t.test('the host first, then the longest prefix, on whole segments', async (t) => {
  const cases: [string | undefined, string, string | undefined][] = [
    ['staff.example.com', '/', 'staff'],
    ['staff.example.com', '/admin', 'staff-admin'],
    ['staff.example.com', '/admin/users?x=1', 'staff-admin'],
    ['staff.example.com', '/admin?x=1', 'staff-admin'],
    // A returnTo keeps its fragment: `#` ends the path as `?` does.
    ['staff.example.com', '/admin#/users', 'staff-admin'],
    ['staff.example.com', '/admin#', 'staff-admin'],
    ['staff.example.com', '/administrator#/admin', 'staff'],
    ['app.example.com', '/portal#/orders', 'portal'],
    ['app.example.com', '/portal?x=1#/shop', 'portal'],
    ['app.example.com', '/portal/shop#/cart', 'shop'],
    ['app.example.com', '/portals#/portal', undefined],
    ['app.example.com', '/portal%23/orders', undefined],
    ['staff.example.com', '/administrator', 'staff'],
    ['STAFF.Example.com:8443', '/admin/x', 'staff-admin'],
    // A host's frontends contain every path here, so a host-less one is never reached on it.
    ['staff.example.com', '/portal/x', 'staff'],
    ['app.example.com', '/portal', 'portal'],
    ['app.example.com', '/portal/shop/cart', 'shop'],
    ['app.example.com', '/portal/shopping', 'portal'],
    ['app.example.com', '/portals', undefined],
    ['app.example.com', '/', undefined],
    [undefined, '/portal/x', 'portal'],
    ['[::1]:3000', '/portal/x', 'portal'],
  ]
  for (const [host, path, expected] of cases) {
    t.equal(matcher.select(host, path)?.name, expected, `${host} ${path}`)
  }
})

t.test('a host whose frontends do not contain the path falls back to the host-less ones', async (t) => {
  const only = new FrontendMatcher([staffAdmin, portal])
  t.equal(only.select('staff.example.com', '/portal/x')?.name, 'portal')
  t.equal(only.select('staff.example.com', '/other'), undefined)
})
