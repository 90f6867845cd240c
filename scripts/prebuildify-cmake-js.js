#!/usr/bin/env node
// prebuildify has no cmake-js backend: it spawns `<node-gyp> rebuild --target=<v> --arch=<a> --release`.
// Passed as `prebuildify --node-gyp <this file>`, this shim maps that call onto `cmake-js rebuild`
// (N-API: the --target Node version does not matter; package.json's binary.napi_versions keeps it offline).
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const argv = process.argv.slice(2);
const arch = (argv.find((a) => a.startsWith('--arch=')) || '').slice('--arch='.length);
const cmakeJs = path.join(path.dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const args = [cmakeJs, 'rebuild', '--log-level', 'warn'];
if (arch) args.push('--arch', arch);
if (argv.includes('--debug')) args.push('--debug');
if (process.env.MINIMIND_CUDA === '0') args.push('--CDMINIMIND_CUDA=OFF');
if (process.env.MINIMIND_CUDA_ARCHS) args.push(`--CDMINIMIND_CUDA_ARCHS=${process.env.MINIMIND_CUDA_ARCHS}`);
console.error(`[prebuildify-cmake-js] node ${args.slice(1).join(' ')}`);
process.exit(spawnSync(process.execPath, args, { stdio: 'inherit' }).status ?? 1);
