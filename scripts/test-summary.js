#!/usr/bin/env node
// Runs jest with --json and prints one plain closing line: "<N> passed, <N> failed".
// Extra arguments go to jest (a test path pattern, -t NAME, ...). The exit code is jest's.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'jest-')), 'result.json');
const jestBin = require.resolve('jest/bin/jest');
const r = spawnSync(process.execPath, [jestBin, '--json', `--outputFile=${out}`, ...process.argv.slice(2)], {
  stdio: ['inherit', 'ignore', 'inherit'], // the human report goes to stderr; the JSON goes to the file
});
let res;
try {
  res = JSON.parse(fs.readFileSync(out, 'utf8'));
} catch {
  console.log('0 passed, 1 failed (jest produced no result)');
  process.exit(r.status || 1);
}
const brokenSuites = res.numRuntimeErrorTestSuites || 0;
if (brokenSuites > 0) console.log(`${brokenSuites} test suite(s) failed to run`);
console.log(`${res.numPassedTests} passed, ${res.numFailedTests + brokenSuites} failed`);
process.exit(r.status ?? 1);
