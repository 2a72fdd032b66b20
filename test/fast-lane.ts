/**
 * The fast lane, `npm run test:unit`: the tests that start no IdP, no Redis
 * and no browser, imported into one process, so the lane pays for loading
 * TypeScript once rather than once a file. `npm test` runs each of them
 * again, in a process of its own, with everything else.
 * test/unit-lane.test.ts checks that nothing here starts a peer.
 */
import './cli/check-online-compare.test.js'
import './cli/main.test.js'
import './config/identity-provider-options.test.js'
import './config/json-schema.test.js'
import './config/load.test.js'
import './config/store-url.test.js'
import './dev/cookie-jar.test.js'
import './docs-cite-no-internal-issues.test.js'
import './dev/upstream.test.js'
import './dockerfile.test.js'
import './errors.test.js'
import './helpers/child-node.test.js'
import './helpers/ports.test.js'
import './helpers/test-config.test.js'
import './http/anti-forgery.test.js'
import './http/return-to-attacks.test.js'
import './http/return-to.test.js'
import './index.test.js'
import './ports-are-never-picked.test.js'
import './proxy/headers.test.js'
import './proxy/route-matching.property.test.js'
import './server/error-bodies.test.js'
import './server/logger.test.js'
import './server/request-metrics.test.js'
import './session/forged-cookie.test.js'
import './session/memory-store.test.js'
import './supported-node.test.js'
import './tokens/memory-lock.test.js'
import './tokens/single-flight.test.js'
import './unit-lane.test.js'
