import { createServer as createHttpServer } from 'node:http'
import { type AddressInfo, createServer as createTcpServer } from 'node:net'
import t from 'tap'
import { Agent, fetch } from 'undici'
import { isTimeout, networkCause } from '../src/network-cause.js'
import { REFUSED_PORT } from './helpers/ports.js'

const budgets = {
  total: { ms: 300, name: 'oidc.timeout' },
  connect: { ms: 200, name: 'oidc.connectTimeout' },
}

/** What fetch rejects with for `url`, through an agent with the budgets above. */
async function failure(url: string, signal?: AbortSignal): Promise<unknown> {
  const agent = new Agent({ connect: { timeout: 200 }, headersTimeout: 300, bodyTimeout: 300 })
  try {
    await fetch(url, { dispatcher: agent, ...(signal ? { signal } : {}) })
  } catch (err) {
    return err
  } finally {
    await agent.close()
  }
  throw new Error(`${url} answered`)
}

t.test('a refused connection names the code, address and port, never only "fetch failed"', async (t) => {
  const port = REFUSED_PORT
  const err = await failure(`http://127.0.0.1:${port}/token`)
  t.equal((err as Error).message, 'fetch failed', 'what fetch itself says')
  t.equal(networkCause(err, budgets), `ECONNREFUSED 127.0.0.1:${port}`)
  t.equal(isTimeout(err), false)
})

t.test('a peer that closes the connection is named as such', async (t) => {
  const server = createTcpServer((socket) => socket.destroy())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const err = await failure(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)
  t.match(networkCause(err, budgets), /^connection closed by the peer \(other side closed\)$|^ECONNRESET/)
})

t.test('timeouts name their limit and the key that sets it', async (t) => {
  const server = createHttpServer(() => {})
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  const headers = await failure(url)
  t.equal(networkCause(headers, budgets), 'timed out after 300 ms (oidc.timeout)', 'undici headersTimeout')
  t.ok(isTimeout(headers))
  const signalled = await failure(url, AbortSignal.timeout(50))
  t.equal(networkCause(signalled, budgets), 'timed out after 300 ms (oidc.timeout)', 'an AbortSignal.timeout')
  t.ok(isTimeout(signalled))
  t.equal(networkCause(signalled), 'timed out', 'without budgets, still a timeout')
})

t.test('DNS, TLS and connect failures, as Node and undici report them', async (t) => {
  const dns = Object.assign(new Error('getaddrinfo ENOTFOUND idp.example'), {
    code: 'ENOTFOUND',
    hostname: 'idp.example',
  })
  t.equal(networkCause(new TypeError('fetch failed', { cause: dns })), 'ENOTFOUND idp.example')
  const expired = Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED' })
  t.equal(
    networkCause(new TypeError('fetch failed', { cause: expired })),
    'TLS CERT_HAS_EXPIRED (certificate has expired)',
  )
  const leaf = Object.assign(new Error('unable to verify the first certificate'), {
    code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  })
  t.equal(
    networkCause(new TypeError('fetch failed', { cause: leaf })),
    'TLS UNABLE_TO_VERIFY_LEAF_SIGNATURE (unable to verify the first certificate)',
  )
  const altname = Object.assign(
    new Error(
      "Hostname/IP does not match certificate's altnames: Host: idp.example. is not cert's CN: other.example",
    ),
    {
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
      reason: "Host: idp.example. is not cert's CN: other.example",
    },
  )
  t.equal(
    networkCause(new TypeError('fetch failed', { cause: altname })),
    "TLS ERR_TLS_CERT_ALTNAME_INVALID (Host: idp.example. is not cert's CN: other.example)",
  )
  const selfSigned = Object.assign(
    new Error(
      'self-signed certificate; if the root CA is installed locally, try running Node.js with --use-system-ca',
    ),
    { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' },
  )
  t.equal(
    networkCause(new TypeError('fetch failed', { cause: selfSigned })),
    'TLS DEPTH_ZERO_SELF_SIGNED_CERT (self-signed certificate)',
    "Node's advice after the semicolon is left out",
  )
  const connect = Object.assign(new Error('Connect Timeout Error'), { code: 'UND_ERR_CONNECT_TIMEOUT' })
  const wrapped = new TypeError('fetch failed', { cause: connect })
  t.equal(networkCause(wrapped, budgets), 'connect timed out after 200 ms (oidc.connectTimeout)')
  t.ok(isTimeout(wrapped))
  const both = new AggregateError([
    Object.assign(new Error('x'), { code: 'ECONNREFUSED', address: '::1', port: 4000 }),
  ])
  t.equal(
    networkCause(new TypeError('fetch failed', { cause: both })),
    'ECONNREFUSED ::1:4000',
    'Happy Eyeballs',
  )
})

t.test('what is not a network failure is not named as one', async (t) => {
  t.equal(networkCause(new TypeError('fetch failed')), undefined)
  t.equal(networkCause({ error: 'invalid_grant' }), undefined)
  t.equal(networkCause(new Error('plain')), undefined)
})
