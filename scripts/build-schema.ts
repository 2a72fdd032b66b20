/** Writes schema/routes.schema.json and docs/configuration.md from the TypeBox config schema: `npm run schema`. */
import { writeFileSync } from 'node:fs'
import { renderSchema } from '../src/config/json-schema.js'
import { renderReference } from '../src/config/reference.js'

writeFileSync(new URL('../schema/routes.schema.json', import.meta.url), renderSchema())
writeFileSync(new URL('../docs/configuration.md', import.meta.url), renderReference())
