// Runs the end-to-end tests (tests/e2e/*.test.mjs) against a real civicmap server at $CIVICMAP_URL.
//   CIVICMAP_URL=http://127.0.0.1:8080 npm run e2e
//   npm run e2e -- --allow-skip      (exits 0 with a message when CIVICMAP_URL is unset; CI without a server)
// Other settings: CIVICMAP_CAMPAIGN (default fibre-pour-tous), CHROMIUM_PATH (default /usr/bin/chromium),
// SCREENSHOT_DIR (default ../docs/screenshots relative to widget/).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const allowSkip = process.argv.includes('--allow-skip');
if (!process.env.CIVICMAP_URL) {
  if (allowSkip) {
    console.log('e2e: SKIPPED — CIVICMAP_URL is not set (start a civicmap server and set CIVICMAP_URL=http://HOST:PORT to run the browser tests).');
    process.exit(0);
  }
  console.error('e2e: FAILED — CIVICMAP_URL is not set. Set it to a running civicmap server, or pass --allow-skip to skip explicitly.');
  process.exit(1);
}
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const files = readdirSync(here).filter((f) => f.endsWith('.test.mjs')).filter((f) => !only.length || only.some((o) => f.includes(o))).sort().map((f) => join(here, f));
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files], { stdio: 'inherit', env: process.env });
process.exit(r.status ?? 1);
