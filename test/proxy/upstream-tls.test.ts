import { createServer } from 'node:https'
import type { TLSSocket } from 'node:tls'
import t, { type Test } from 'tap'
import type { RawConfig } from '../../src/config/schema.js'
import { buildTestApp } from '../helpers/app.js'
import { type Issued, makePki } from '../helpers/certificates.js'
import { startStrictTlsServer } from '../helpers/strict-tls-server.js'

/**
 * An https upstream of a service mesh: its certificate from a private CA,
 * and it requires a client certificate from that CA (Node refuses the
 * handshake otherwise). It answers with who it saw: the client
 * certificate's subject and the SNI name.
 */
async function meshUpstream(t: Test, server: Issued, ca: string): Promise<string> {
  const upstream = createServer(
    { cert: server.cert, key: server.key, ca, requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      const socket = req.socket as TLSSocket
      res.setHeader('content-type', 'application/json')
      res.end(
        JSON.stringify({ client: socket.getPeerCertificate().subject?.CN, sni: socket.servername || null }),
      )
    },
  )
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    upstream.closeAllConnections()
    upstream.close()
  })
  return `https://127.0.0.1:${(upstream.address() as { port: number }).port}`
}

type RouteTls = RawConfig['routes'][number]['tls']

async function gatewayTo(t: Test, upstream: string, tls: RouteTls) {
  const lines: Record<string, unknown>[] = []
  const app = await buildTestApp(
    t,
    {
      logLevel: 'warn',
      routes: [
        { path: '/api', upstream, token: 'none', csrf: false, timeout: 5_000, ...(tls ? { tls } : {}) },
      ],
    },
    { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
  )
  const call = async () => {
    const res = await app.inject({ method: 'GET', url: '/api/who' })
    return { status: res.statusCode, body: res.json<Record<string, unknown>>() }
  }
  return { app, call, lines }
}

t.test('routes[].tls: private CA and client certificate reach an upstream that requires them', async (t) => {
  const pki = makePki(t)
  const upstream = await meshUpstream(t, pki.issue('orders'), pki.ca.cert)
  const client = pki.issue('gatehouse-client')
  const { call, app } = await gatewayTo(t, upstream, {
    ca: { file: pki.ca.certFile },
    cert: { file: client.certFile },
    key: { pem: client.key },
  })
  t.same(await call(), { status: 200, body: { client: 'gatehouse-client', sni: null } })
  const scraped = await app.gatehouse.metrics.registry.metrics()
  t.match(
    scraped,
    /gatehouse_tls_client_certificate_days_left\{option="routes\[0\]\.tls"\} 0\.9/,
    'its expiry is a metric too',
  )
})

t.test('negative controls: each missing or wrong piece is a 502 whose log line says why', async (t) => {
  const pki = makePki(t)
  const other = makePki(t)
  const upstream = await meshUpstream(t, pki.issue('orders'), pki.ca.cert)
  const client = pki.issue('gatehouse-client')
  const stranger = other.issue('stranger')
  const cert = { cert: { file: client.certFile }, key: { file: client.keyFile } }
  const refused: [string, RouteTls, string, RegExp][] = [
    [
      'no tls: the system CAs do not know the private CA',
      undefined,
      'upstream_tls_failed',
      /does not chain to a trusted CA/,
    ],
    [
      'the wrong CA',
      { ca: { file: other.ca.certFile }, ...cert },
      'upstream_tls_failed',
      /does not chain to a trusted CA/,
    ],
    // TLS 1.3 (RFC 8446 §4.4.2.4): the upstream refuses the client's certificate after the
    // client's side of the handshake, with an alert on the first read (tls/connect-options.ts).
    [
      'no client certificate',
      { ca: { file: pki.ca.certFile } },
      'upstream_tls_failed',
      /requires a client certificate and got none/,
    ],
    // Node as the upstream checks a certificate it got after the handshake and closes without an
    // alert, as a crashing upstream would; only a hint can say why (servers that send
    // bad_certificate or unknown_ca get the TLS error, tls/handshake-errors.ts).
    [
      'a client certificate from a CA the upstream does not trust',
      { ca: { file: pki.ca.certFile }, cert: { file: stranger.certFile }, key: { file: stranger.keyFile } },
      'upstream_unreachable',
      /requires a client certificate/,
    ],
  ]
  for (const [name, tls, error, why] of refused) {
    const { call, lines } = await gatewayTo(t, upstream, tls)
    t.match(await call(), { status: 502, body: { error } }, name)
    const line = lines.find((l) => l.msg === 'upstream request failed')
    t.match(line?.tls ?? line?.hint, why, `${name}: the log says why`)
    if (name === 'no client certificate')
      t.equal(
        line?.upstreamError,
        'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
        'and logs the alert as the cause',
      )
  }
})
t.test(
  'an upstream whose TLS server refuses the client certificate with an alert: the log says which alert, and what it means',
  async (t) => {
    const pki = makePki(t)
    // A month ahead by its clock, it finds our certificate expired.
    const upstream = await startStrictTlsServer(t, {
      server: pki.issue('orders'),
      ca: pki.ca.certFile,
      at: new Date(Date.now() + 30 * 86_400_000),
    })
    const client = pki.issue('gatehouse-client')
    const { call, lines } = await gatewayTo(t, upstream.url, {
      ca: { file: pki.ca.certFile },
      cert: { file: client.certFile },
      key: { file: client.keyFile },
    })
    t.match(await call(), { status: 502, body: { error: 'upstream_tls_failed' } })
    t.match(
      lines.find((l) => l.msg === 'upstream request failed')?.tls,
      /^the server refused the client certificate: the certificate has expired, or is not valid yet, by the server's clock \(alert certificate_expired; tls\.cert, tls\.key\)$/,
    )
  },
)

t.test(
  'routes[].tls.servername: the name the upstream certificate carries when the URL has another',
  async (t) => {
    const pki = makePki(t)
    const upstream = await meshUpstream(
      t,
      pki.issue('orders', { onlyDns: ['orders.mesh.internal'] }),
      pki.ca.cert,
    )
    const client = pki.issue('gatehouse-client')
    const tls = {
      ca: { file: pki.ca.certFile },
      cert: { file: client.certFile },
      key: { file: client.keyFile },
    }
    const without = await gatewayTo(t, upstream, tls)
    t.match(await without.call(), { status: 502, body: { error: 'upstream_tls_failed' } })
    t.match(
      without.lines.find((l) => l.msg === 'upstream request failed'),
      { tls: /not for this host name/ },
    )
    const named = await gatewayTo(t, upstream, { ...tls, servername: 'orders.mesh.internal' })
    t.same(await named.call(), {
      status: 200,
      body: { client: 'gatehouse-client', sni: 'orders.mesh.internal' },
    })
  },
)
