/** One of the fast lane's workers (test/unit-lane.ts): `npm run test:unit` runs two, one per core. */
import { runUnitLane } from '../unit-lane.js'

await runUnitLane()
