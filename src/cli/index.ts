#!/usr/bin/env node
import { start } from '../server/start.js'
import { main } from './main.js'

const code = await main(process.argv.slice(2), {
  stdout: (line) => process.stdout.write(`${line}\n`),
  stderr: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
  start: (config) => start(config),
})
// `start` keeps the process alive through its server; every other command ends here.
if (code !== 0 || process.argv[2] !== 'start') process.exitCode = code
