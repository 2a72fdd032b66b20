/**
 * The thread a reload's check runs on (reload-check.ts): one check, its
 * answer posted back, and the thread ends.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { checkReload, type ReloadCheckInput } from './reload-check.js'

parentPort?.postMessage(checkReload(workerData as ReloadCheckInput))
