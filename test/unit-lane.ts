/**
 * The fast lane, `npm run test:unit`: every unit test, found by the rule in
 * test/helpers/lanes.ts (a test file that loads nothing that starts a peer),
 * not by a list. They are imported into this one process, so the lane pays
 * for loading TypeScript once rather than once a file. `npm test` runs each
 * of them again, in a process of its own, with everything else.
 * test/unit-lane.test.ts checks the rule both ways.
 */
import { pathToFileURL } from 'node:url'
import { forbidChildProcesses, unitTests } from './helpers/lanes.js'

forbidChildProcesses()
for (const file of unitTests()) await import(pathToFileURL(file).href)
