import t from 'tap'
import { withoutHighPriority } from '../../src/proxy/cookie-priority.js'

t.test(
  'an upstream cookie loses Priority=High in every spelling a browser reads, and nothing else',
  async (t) => {
    const cases: [string, string][] = [
      ['a=1; Path=/; Priority=High', 'a=1; Path=/'],
      ['a=1; priority=high; Secure', 'a=1; Secure'],
      ['a=1;PRIORITY = HIGH ;HttpOnly', 'a=1;HttpOnly'],
      ['a=1; Priority=\thigh\t', 'a=1'],
      ['a=1; Priority=Low; Priority=High', 'a=1; Priority=Low'],
      ['a=1; Priority=High; Priority=High', 'a=1'],
    ]
    for (const [line, sent] of cases) t.equal(withoutHighPriority(line), sent, line)
    const untouched = [
      'a=1; Path=/',
      'a=1; Priority=Low',
      'a=1; Priority=Medium',
      'priority=high',
      'a=Priority=High; Path=/',
      'a=1; Path=/priority=high',
      'a=1; Priority',
      'a=1; Priority=Highest',
    ]
    for (const line of untouched) t.equal(withoutHighPriority(line), line, `${line}: as written`)
  },
)
