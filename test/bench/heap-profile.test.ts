import t from 'tap'
import { allocatedPerRequest, type HeapProfile } from '../../bench/heap-profile.js'

const frame = (functionName: string) => ({
  functionName,
  url: `file:///x/src/${functionName}.js`,
  lineNumber: 0,
})

t.test('bytes per request by allocating function, every path summed', async (t) => {
  const profile: HeapProfile = {
    head: {
      callFrame: { functionName: '(root)', url: '', lineNumber: -1 },
      selfSize: 0,
      children: [
        {
          callFrame: frame('guard'),
          selfSize: 400,
          children: [{ callFrame: frame('headers'), selfSize: 600, children: [] }],
        },
        { callFrame: frame('headers'), selfSize: 1000, children: [] },
      ],
    },
  }
  const { total, bySite } = allocatedPerRequest(profile, 10)
  t.equal(total, 200)
  t.equal(bySite.get('guard src/guard.js:1'), 40)
  t.equal(bySite.get('headers src/headers.js:1'), 160, 'both paths to one function')
  t.notOk(bySite.has('(root)'), 'frames that allocated nothing are left out')
})
