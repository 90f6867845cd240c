// jest runs tests in a vm context, but the native addon and msgpackr create objects in the host realm.
// Share every typed-array constructor so `instanceof` checks agree between the two.
const { TestEnvironment } = require('jest-environment-node');

const SHARED = ['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array',
  'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array', 'ArrayBuffer',
  'SharedArrayBuffer', 'DataView'];

class HostTypedArraysEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
  }
}
module.exports = HostTypedArraysEnvironment;
