// Lets a plain `node` process run the TypeScript sources (tests spawn ranks with `node -r test/dist/register.js`):
// compiles each .ts file to CommonJS with swc, as jest does. The compiled package (dist/) does not need it.
const fs = require('node:fs');
const swc = require('@swc/core');

require.extensions['.ts'] = (module, filename) => {
  const { code } = swc.transformSync(fs.readFileSync(filename, 'utf8'), {
    filename,
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'commonjs' },
  });
  module._compile(code, filename);
};
