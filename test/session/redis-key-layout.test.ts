import { readFileSync } from 'node:fs'
import t from 'tap'
import { REDIS_KEY_LAYOUT } from '../../src/session/redis-key-layout.js'

t.test("REDIS_KEY_LAYOUT names every key in the README's key table, and no other", async (t) => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const table = readme.slice(readme.indexOf('| Key | Type | Holds | Expires |'))
  const rows = table.slice(0, table.indexOf('\n\n')).split('\n').slice(2)
  const documented = rows.map((row) => /^\| `([^`]+)`/.exec(row)?.[1])
  t.ok(documented.length >= 9, 'the table was found')
  t.same(
    Object.values(REDIS_KEY_LAYOUT)
      .map((entry) => entry.key)
      .sort(),
    documented.sort(),
  )
})
