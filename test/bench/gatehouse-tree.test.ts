import t from 'tap'
import { gatehouseTree } from '../../bench/gatehouse-tree.js'

t.test('a measuring run takes the compiled build users run; the smoke run the sources', async (t) => {
  t.equal(gatehouseTree(false, {}), 'dist')
  t.equal(gatehouseTree(true, {}), 'src')
})

t.test('BENCH_GATEHOUSE chooses either way, and nothing else is taken', async (t) => {
  t.equal(gatehouseTree(false, { BENCH_GATEHOUSE: 'src' }), 'src')
  t.equal(gatehouseTree(true, { BENCH_GATEHOUSE: 'dist' }), 'dist')
  t.throws(() => gatehouseTree(false, { BENCH_GATEHOUSE: 'build' }), /BENCH_GATEHOUSE must be src or dist/)
})
