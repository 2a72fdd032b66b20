/** Writes schema/routes.schema.json from the TypeBox config schema: `npm run schema`. */
import { writeFileSync } from 'node:fs'
import { renderSchema } from '../src/config/json-schema.js'

writeFileSync(new URL('../schema/routes.schema.json', import.meta.url), renderSchema())
