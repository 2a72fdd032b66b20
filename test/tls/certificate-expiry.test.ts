import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import t from 'tap'
import { loadConfig } from '../../src/config/load.js'
import { CertificateExpiry } from '../../src/tls/certificate-expiry.js'
import { makePki, type TestPki, tlsClientAuthConfig } from '../helpers/certificates.js'

/**
 * The expiry of the client certificates in use: logged when one comes into
 * use, and a gauge of the days each has left, which follows a reload that
 * renews, adds or removes one (an alert must stop once the certificate is
 * renewed), by the option `check` would name.
 */

const env = { SESSION_SECRET: 'x'.repeat(32) }

/** The config of `tls` (the lines under `oidc:`) and `rest` (routes or frontends), loaded. */
const config = (pki: TestPki, tls: string, rest?: string) =>
  loadConfig(tlsClientAuthConfig(pki.dir, tls, rest), env)

const tls = (pki: TestPki, name: string) => {
  const issued = pki.issue(name)
  return `{ cert: { file: ${issued.certFile} }, key: { file: ${issued.keyFile} }, ca: { file: ${pki.ca.certFile} } }`
}

function expiryOf() {
  const lines: { msg: string; option: string; subject: string }[] = []
  const app = Fastify({
    logger: { level: 'info', stream: { write: (line: string) => lines.push(JSON.parse(line)) } },
  })
  const registry = new Registry()
  const expiry = new CertificateExpiry(registry, app.log, Date.now)
  const gauge = async () =>
    Object.fromEntries(
      [
        ...(await registry.metrics()).matchAll(
          /^gatehouse_tls_client_certificate_days_left\{option="([^"]+)"\} ([\d.]+)$/gm,
        ),
      ].map((m) => [m[1], Number(m[2])]),
    )
  return { expiry, lines, gauge }
}

t.test('a reload that renews, adds or removes a certificate: the log and the gauge follow it', async (t) => {
  const pki = makePki(t)
  const first = config(
    pki,
    `  tls: ${tls(pki, 'client-2026')}`,
    `routes:
  - { path: /api, upstream: "https://orders.internal", tls: ${tls(pki, 'mesh-2026')} }`,
  )
  const { expiry, lines, gauge } = expiryOf()
  expiry.use(first)
  t.same(
    lines.map((l) => [l.option, l.subject]),
    [
      ['oidc.tls', 'CN=client-2026'],
      ['routes[0].tls', 'CN=mesh-2026'],
    ],
    'each certificate is logged when it comes into use',
  )
  t.same(Object.keys(await gauge()), ['oidc.tls', 'routes[0].tls'])
  t.ok((await gauge())['oidc.tls']! > 0.9, 'days left')

  expiry.use(first)
  t.equal(lines.length, 2, 'the same certificates again: nothing more to say')

  const renewed = config(pki, `  tls: ${tls(pki, 'client-2027')}`)
  expiry.use(renewed)
  t.same(
    lines.slice(2).map((l) => [l.option, l.subject]),
    [['oidc.tls', 'CN=client-2027']],
    'the renewed certificate is logged',
  )
  t.same(Object.keys(await gauge()), ['oidc.tls'], 'the removed one has no series any more')
})

t.test('a route under frontends: is named as check names it', async (t) => {
  const pki = makePki(t)
  const { expiry, gauge } = expiryOf()
  expiry.use(
    config(
      pki,
      `  tls: ${tls(pki, 'client')}`,
      `frontends:
  - name: staff
    publicUrl: https://staff.example.com
    host: staff.example.com
    routes: []
  - name: portal
    publicUrl: https://portal.example.com
    host: portal.example.com
    routes:
      - { path: /api, upstream: "https://portal.internal", tls: ${tls(pki, 'portal-mesh')} }`,
    ),
  )
  t.same(Object.keys(await gauge()), ['oidc.tls', 'frontends[1].routes[0].tls'])
})

t.test('no client certificate: no gauge at all', async (t) => {
  const pki = makePki(t)
  const { expiry, gauge, lines } = expiryOf()
  const file = join(pki.dir, 'plain.yaml')
  writeFileSync(
    file,
    'server:\n  publicUrl: https://app.example.com\noidc: { issuer: https://idp.example.com, clientId: bff, clientSecret: s }\nsession:\n  secret: ${SESSION_SECRET}\n',
  )
  expiry.use(loadConfig(file, env))
  t.same(await gauge(), {})
  t.same(lines, [])
})
