import t from 'tap'
import { configHead, configProblems } from '../helpers/config-problems.js'

/*
 * A problem's message had each secret cut out one after another, each in
 * its raw and its JSON form. A secret that is part of another cut that one
 * short and left the rest of it printed; and the second form's pass read
 * again what the first had put in (`[redacted: the value of …]`), so a
 * secret found in those words (a letter, `value`) was cut out of them
 * again, each secret multiplying the message about sixteen-fold: five
 * one-letter session secrets made a 27 MB problem line, six ended `check`
 * out of memory.
 */

const REST = '-the-rest-of-the-session-secret'

const sessionSecret = (line: string) => configHead(`secret: \${SESSION_SECRET}\n  ${line}`)

t.test('a secret that begins another is cut out with all of the other', async (t) => {
  const problems = configProblems(sessionSecret('sameSite: ${SESSION_SECRET}'), {
    OIDC_CLIENT_SECRET: 'hunter2',
    SESSION_SECRET: `hunter2${REST}`,
  })
  t.equal(problems.length, 1)
  t.match(problems[0], /^9 session\.sameSite: must be one of lax, strict \(got "\[redacted: the value of /)
  t.notMatch(problems.join('\n'), 'the-rest', 'no part of the session secret')
})

t.test('two secrets that overlap are both cut out whole', async (t) => {
  // The client secret's end is the session secret's start.
  const problems = configProblems(sessionSecret('sameSite: "X${SESSION_SECRET}"'), {
    OIDC_CLIENT_SECRET: 'Xhunter',
    SESSION_SECRET: `hunter2${REST}`,
  })
  t.equal(problems.length, 1)
  t.notMatch(problems.join('\n'), /the-rest|2-the|hunter/, 'no part of either secret')
})

t.test('what a cut puts in is not cut again, so short secrets cost the message little', async (t) => {
  const names = ['S0', 'S1', 'S2']
  const env: Record<string, string> = { OIDC_CLIENT_SECRET: 'client-secret-long-enough' }
  for (const name of names) env[name] = 'e'
  const text = configHead(
    `secrets:\n${names.map((name) => `    - \${${name}}`).join('\n')}\n  sameSite: weird`,
  )
  const problems = configProblems(text, env)
  t.ok(problems.length > 0, 'the short secrets and the sameSite are problems')
  for (const problem of problems) t.ok(problem.length < 2_000, `${problem.length} characters`)
  const sameSite = problems.find((p) => p.includes('session.sameSite'))
  t.match(
    sameSite,
    /\(got "w\[redacted: the value of S0\]ird"\)$/,
    'the secret cut out once, not the words put in its place',
  )
})
