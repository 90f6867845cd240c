#!/usr/bin/env node
// npm "install" hook for minimind-native.
//  1. If a prebuild (prebuilds/<platform>-<arch>/*.node) or an existing build/Release/*.node loads, do nothing
//     (MINIMIND_BUILD_FROM_SOURCE=1 or --build-from-source forces a compile).
//  2. Else build with cmake-js (CPU always, CUDA when nvcc is found and MINIMIND_CUDA is not 0).
//  3. Else (no cmake, or cmake-js failed) fall back to node-gyp (CPU only, binding.gyp).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const env = process.env;
const log = (m) => console.error(`[minimind-native] ${m}`);
const fromSource = env.npm_config_build_from_source === 'true' || env.MINIMIND_BUILD_FROM_SOURCE === '1';

if (!fromSource) {
  try {
    const file = require('node-gyp-build').path(root);
    require(file); // really dlopen it: catches glibc/arch mismatches of a prebuild
    log(`using ${path.relative(root, file)} (no compile)`);
    process.exit(0);
  } catch (e) {
    log(`no usable binary (${String(e.message).split('\n')[0]}) -> building from source`);
  }
}

const run = (args) => spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env }).status === 0;
const hasCmake = spawnSync(env.CMAKE || 'cmake', ['--version'], { stdio: 'ignore' }).status === 0;

if (hasCmake && env.MINIMIND_BACKEND !== 'node-gyp') {
  const cmakeJs = path.join(path.dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
  const args = [cmakeJs, 'rebuild', '--log-level', 'warn'];
  if (env.MINIMIND_CUDA === '0') args.push('--CDMINIMIND_CUDA=OFF');
  if (env.MINIMIND_CUDA_ARCHS) args.push(`--CDMINIMIND_CUDA_ARCHS=${env.MINIMIND_CUDA_ARCHS}`);
  if (env.CMAKE) args.push(`--cmake-path=${env.CMAKE}`);
  if (run(args)) process.exit(0);
  log('cmake-js build failed -> trying node-gyp (CPU only)');
} else {
  log('cmake not found -> node-gyp (CPU only)');
}

// npm exports its bundled node-gyp as npm_config_node_gyp inside lifecycle scripts.
let gyp = env.npm_config_node_gyp;
if (!gyp) {
  try { gyp = require.resolve('node-gyp/bin/node-gyp.js'); } catch { /* not installed */ }
}
if (!gyp) {
  log('neither cmake nor node-gyp available; install cmake (>=3.19) and a C++17 compiler');
  process.exit(1);
}
const gypArgs = [gyp, 'rebuild'];
// node-gyp downloads Node headers unless nodedir is set; use this node's own headers when present (offline).
const prefix = path.resolve(path.dirname(process.execPath), '..');
if (!env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include/node/common.gypi'))) {
  gypArgs.push(`--nodedir=${prefix}`);
}
process.exit(run(gypArgs) ? 0 : 1);
