import t from 'tap'
import { MAX_PROBLEM_LINES } from '../../src/config/errors.js'
import { route } from '../helpers/gateway.js'
import { configText, LogLines, startReloadable } from '../helpers/reloadable.js'

/**
 * A refused reload logged every problem on a line of its own, and a file
 * holds as many as it has keys: one of 30,000 unknown keys wrote 8 MiB of
 * log per reload, and a reload follows each edit. It logs the first
 * `MAX_PROBLEM_LINES`, then one line saying how many more and where to
 * see them all; the result still holds every problem.
 */

const UNKNOWN_KEYS = 5_000

t.test('a reload refused for 5,000 problems logs 50 of them, how many more, and its summary', async (t) => {
  const log = new LogLines()
  const stack = await startReloadable(
    t,
    (upstream) => [route('/api/public', upstream, { token: 'none', csrf: false })],
    { watch: false, logStream: log.stream, input: { logLevel: 'info' } },
  )
  const { running, configMap } = stack
  const keys = Array.from({ length: UNKNOWN_KEYS }, (_, i) => `unknownOption${i}: 1\n`).join('')
  configMap.write(configText(stack.input) + keys)

  const result = await running.reload()
  t.equal(result.result, 'rejected')
  t.equal(
    result.result === 'rejected' && result.problems.length,
    UNKNOWN_KEYS,
    'the result holds every problem',
  )
  const summary = await log.seen('the summary', (l) => /^config reload rejected:/.test(l.msg))
  t.match(summary.msg, `has ${UNKNOWN_KEYS} problems; the running config is kept`)

  const refusal = log.lines.filter((l) => l.code === 'GATEHOUSE_CONFIG_RELOAD_REJECTED')
  t.equal(refusal.length, MAX_PROBLEM_LINES + 2, 'the first 50 problems, the line for the rest, the summary')
  t.match(refusal[0]!.msg, /unknownOption0: unknown option/)
  t.match(refusal[MAX_PROBLEM_LINES - 1]!.msg, `unknownOption${MAX_PROBLEM_LINES - 1}: unknown option`)
  t.equal(
    refusal[MAX_PROBLEM_LINES]!.msg,
    `${configMap.file}: ${UNKNOWN_KEYS - MAX_PROBLEM_LINES} more problems not listed here; \`gatehouse check --config ${configMap.file}\` lists them all`,
  )
  t.equal(refusal[MAX_PROBLEM_LINES]!.unlisted, UNKNOWN_KEYS - MAX_PROBLEM_LINES)

  // A human-sized file still has every problem on its own line.
  log.lines.length = 0
  configMap.write(`${configText(stack.input)}unknownOptionA: 1\nunknownOptionB: 1\n`)
  const few = await running.reload()
  t.equal(few.result, 'rejected')
  const lines = log.lines.filter((l) => l.code === 'GATEHOUSE_CONFIG_RELOAD_REJECTED').map((l) => l.msg)
  t.equal(lines.length, 3, 'two problems, then the summary')
  t.match(lines[0], /unknownOptionA: unknown option/)
  t.match(lines[1], /unknownOptionB: unknown option/)
})
