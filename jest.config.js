/** @swc/jest transpiles only; `npm run typecheck` type-checks. */
module.exports = {
  testEnvironment: '<rootDir>/test/jest-env.js',
  roots: ['<rootDir>/test'],
  testTimeout: 120000,
  transform: {
    '^.+\\.tsx?$': ['@swc/jest', {
      jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
      module: { type: 'commonjs' },
    }],
  },
};
