import t from 'tap'
import { startCli } from '../helpers/cli-gateway.js'
import { closed, stalledBehind, wsUpstream } from '../helpers/websocket.js'
import { pollUntil } from '../helpers/within.js'

t.test(
  'SIGTERM during a slow upstream call, then SIGHUP: the call finishes with 200 and the process exits 0',
  async (t) => {
    const { child, upstream, url, output, exited } = await startCli(t)
    t.match(
      output(),
      /gatehouse listening on .*1 routes, memory store, issuer/,
      'one startup line sums up routes, store and issuer',
    )
    t.ok(url, 'the startup line names the address')
    t.match(
      output(),
      /"redirectUris":\{"default":\["http:\/\/127\.0\.0\.1\/auth\/callback"\]\}/,
      'and the redirect URI to register at the IdP',
    )
    const slow = fetch(`${url}/api/public/work?delayMs=1500`)
    await pollUntil(async () => upstream.requests.some((r) => r.path.startsWith('/api/public/work')))
    child.kill('SIGTERM')
    // A reload asked for while draining (a ConfigMap tool, a script) must
    // not end the process by SIGHUP's default action mid-request.
    await pollUntil(async () => output().includes('shutting down'))
    child.kill('SIGHUP')

    const response = await slow
    t.equal(response.status, 200, 'the request in flight finished')
    const [code, signal] = await exited
    t.equal(signal, null, 'not ended by a signal')
    t.equal(code, 0, 'exit 0')
    t.match(output(), /SIGHUP while shutting down: no reload/)
    t.match(output(), /shutting down/)
    t.notMatch(output(), /\n\s+at /, 'no stack trace')
  },
)

t.test(
  'server.drainTimeout bounds the drain: a request still running then is cut off, and the exit says so',
  async (t) => {
    const { upstream, child, url, output, exited } = await startCli(t, '', {}, ', drainTimeout: 1s')
    t.match(output(), /drainTimeout: 1s is shorter than routes\[0\]\.timeout/, 'check warns of it at start')
    // The request would end 10 s in: a process still draining then was not
    // cut off at the configured second. The margin is the whole 9 s between,
    // as a loaded machine can take seconds to exit.
    const slow = fetch(`${url}/api/public/work?delayMs=10000`).then(
      (r) => r.status,
      () => 'cut off',
    )
    await pollUntil(async () => upstream.requests.some((r) => r.path.startsWith('/api/public/work')))
    const stopping = performance.now()
    child.kill('SIGTERM')
    const [code] = await exited
    t.equal(code, 1, 'exit 1: a request was still in flight')
    const took = performance.now() - stopping
    t.ok(took < 9_000, `after the configured second, not the request (${Math.round(took)} ms)`)
    t.equal(await slow, 'cut off')
    t.match(output(), /drain timeout reached/)
  },
)

/**
 * A socket whose browser keeps sending but reads nothing of what is queued
 * ahead of the gateway's close frame: the traffic shows it alive, so only
 * `ws`'s close timer (two ping intervals and a grace, 62 s by default)
 * bounded its close, past any drain: the process was cut off at
 * `server.drainTimeout` with exit 1, as if a request had been. A wss://
 * upstream that stops reading was held so too. What is left of the
 * sockets' closing is dropped just before the drain ends.
 */
t.test(
  'SIGTERM with a socket whose browser sends but never reads: dropped as the drain ends, exit 0',
  async (t) => {
    const MiB = 1024 * 1024
    const upstream = await wsUpstream(t, { maxPayload: 64 * MiB })
    const { child, url, output, exited } = await startCli(
      t,
      '',
      {},
      ', drainTimeout: 3s',
      `  - { path: /live, upstream: "${upstream.url}", token: none, csrf: false, websocket: { maxMessage: ${32 * MiB} } }`,
    )
    const { browser, upstreamLeg } = await stalledBehind(
      t,
      upstream,
      `${url!.replace(/^http/, 'ws')}/live/feed`,
      { origin: url! },
      16 * MiB,
    )
    const atUpstream = closed(upstreamLeg)
    const sending = setInterval(() => browser.send('still here'), 50)
    t.teardown(() => clearInterval(sending))

    const stopping = performance.now()
    child.kill('SIGTERM')
    const [code, signal] = await exited
    const took = performance.now() - stopping
    t.equal(signal, null)
    t.equal(code, 0, 'exit 0: the sockets were closed, no request was cut off')
    // The close timer is 62 s; the drain 3 s. Half a minute tells them apart
    // on any machine.
    t.ok(took < 30_000, `within the drain (${Math.round(took)} ms), not at the close timer`)
    t.notMatch(output(), /drain timeout reached/)
    t.same(await atUpstream, { code: 1001, reason: 'gateway shutting down' }, 'the upstream was told')
  },
)
