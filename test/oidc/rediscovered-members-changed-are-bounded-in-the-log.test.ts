/**
 * A reload that discovers a provider again logs which members of its
 * document changed. The names are the provider's: a document of 30,000
 * made-up members (within the 1 MiB an IdP answer may be) made one log
 * line of about 600 KiB, every reload that found them changed, and names
 * thousands of characters long went into it whole. The line now names the
 * first `MAX_CHANGED_LISTED`, each bounded, and counts them all.
 */
import t from 'tap'
import { MAX_CHANGED_LISTED } from '../../src/oidc/rediscovery.js'
import { route } from '../helpers/gateway.js'
import { LogLines, startReloadable } from '../helpers/reloadable.js'

t.test('a document of 30,000 made-up members is one short line', async (t) => {
  const log = new LogLines()
  const { running, idp } = await startReloadable(t, (upstream) => [route('/api/orders', upstream)], {
    watch: false,
    logStream: log.stream,
    input: { logLevel: 'info', idpTimeout: 2_000 },
  })
  const members: Record<string, unknown> = {}
  for (let i = 0; i < 30_000; i++) members[`x_${String(i).padStart(5, '0')}`] = i
  members[`a${'b'.repeat(5_000)}`] = 1
  idp.advertise(members)
  t.equal((await running.reload()).result, 'unchanged')
  t.equal(Object.keys(running.app.gatehouse.oidc.metadata!).length > 30_000, true, 'the document is in use')
  const line = log.lines.find((l) => /discovered again on config reload/.test(l.msg))
  t.ok(line, 'the change is logged')
  const changed = line?.changed as string[]
  t.equal(changed.length, MAX_CHANGED_LISTED, `the first ${MAX_CHANGED_LISTED} are named`)
  t.equal(changed[0]!.length <= 101, true, 'a long name is cut')
  t.match(changed[0], /^abbb+…$/, 'in the sorted order')
  t.equal(line?.changedCount, 30_001, 'every change is counted')
  t.equal(JSON.stringify(line).length < 4_096, true, 'the line stays under 4 KiB')
})
