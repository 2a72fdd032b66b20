import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { CONFIG_ENV, configHead, configProblems } from '../helpers/config-problems.js'

/*
 * An issuer with a query or a fragment (`https://idp.example.com/?realm=x`,
 * a URL copied from a browser's address bar) passed `gatehouse check`, yet
 * no provider can match it: an issuer has "no query or fragment components"
 * (OpenID Connect Discovery 1.0 §2, RFC 8414 §2), the discovery document's
 * `issuer` must equal the configured one (§4.3), so every start and reload
 * went live with a provider whose discovery was refused, every sign-in
 * failing, found only at /readyz.
 */
const withIssuer = (issuer: string) =>
  `${configHead().replace('issuer: https://idp.example.com', `issuer: ${JSON.stringify(issuer)}`)}routes:\n  - { path: /api, upstream: "http://api:8080" }\n`

/** Its problems, or none when it loads, so that each case is its own assertion. */
const problems = (text: string) => {
  try {
    return configProblems(text, CONFIG_ENV)
  } catch {
    return []
  }
}

const REFUSED =
  '4 oidc.issuer: must have no query or fragment (OpenID Connect Discovery 1.0 §2, RFC 8414 §2): the provider advertises its issuer without them, and discovery refuses any other'

t.test('an issuer with a query or fragment, even an empty one, is refused at its line', async (t) => {
  for (const issuer of [
    'https://idp.example.com/?realm=corp',
    'https://idp.example.com?',
    'https://idp.example.com/realms/corp#',
    'https://idp.example.com/realms/corp#/login',
  ])
    t.same(problems(withIssuer(issuer)), [REFUSED], issuer)
})

t.test('in identityProviders, the provider is named by its place in the list', async (t) => {
  const text = `server: { publicUrl: https://app.example.com }
identityProviders:
  - { name: corp, issuer: "https://corp.example.com", clientId: a, clientSecret: s }
  - { name: partner, issuer: "https://partner.example.com/?tenant=1", clientId: b, clientSecret: s }
session: { secret: "\${SESSION_SECRET}" }
routes:
  - { path: /api, upstream: "http://api:8080" }
`
  t.same(problems(text), [REFUSED.replace('4 oidc.issuer', '4 identityProviders[1].issuer')])
})

t.test('an issuer with a path, a trailing slash, a port or capitals is taken', async (t) => {
  for (const issuer of [
    'https://idp.example.com/',
    'https://idp.example.com/realms/corp',
    'https://idp.example.com:8443/realms/corp/',
    'HTTPS://IDP.Example.com',
  ])
    t.doesNotThrow(() => parseConfig(withIssuer(issuer), 'routes.yaml', CONFIG_ENV), issuer)
})
