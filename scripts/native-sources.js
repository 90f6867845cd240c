#!/usr/bin/env node
// The native source list, found by directory exactly as CMakeLists.txt globs it, for binding.gyp's
// CPU-only fallback build. `node scripts/native-sources.js cpu` prints the CPU sources, space-separated.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const list = (dir, ext) =>
  fs.readdirSync(path.join(root, dir)).filter((f) => f.endsWith(ext)).sort().map((f) => `${dir}/${f}`);

const sources = {
  cpu: [...list('native/cpu', '.cc'), ...list('native/addon', '.cc')],
  cuda: list('native/cuda', '.cu'),
};
module.exports = sources;
if (require.main === module) console.log(sources[process.argv[2] || 'cpu'].join(' '));
