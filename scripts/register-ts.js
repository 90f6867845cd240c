// Lets a plain `node` process or worker thread run the TypeScript sources directly (tests spawn CLIs and ranks
// with `node -r ./scripts/register-ts.js bin/cli.ts ...`; worker threads started from .ts sources under jest
// require it first): each .ts file is compiled to CommonJS with swc (a dev dependency), as jest does.
// The compiled package (dist/) never needs it.
'use strict';
const fs = require('node:fs');

if (!require.extensions['.ts']) {
  const swc = require('@swc/core');
  require.extensions['.ts'] = (module, filename) => {
    const { code } = swc.transformSync(fs.readFileSync(filename, 'utf8'), {
      filename,
      jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
      module: { type: 'commonjs' },
    });
    module._compile(code, filename);
  };
}
