import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    // api-types.ts is openapi-typescript's output, checked against the document instead (scripts/console-types.ts).
    ignores: ['dist/**', 'node_modules/**', '.data/**', '.tap/**', '.scratch/**', 'test-output/**', 'src/console/api-types.ts']
  }),
  {
    rules: {
      // `void promise` marks a deliberately unawaited promise.
      'no-void': ['error', { allowAsStatement: true }]
    }
  },
  {
    // Test files take `t` from test/helpers/tap.ts (tap's CommonJS build, which skips the module
    // hook tap's runner puts on every ES module a test loads); only types come from 'tap' itself.
    files: ['test/**/*.ts'],
    ignores: ['test/helpers/tap.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        paths: [{ name: 'tap', message: "import t from './helpers/tap.js' (see test/helpers/tap.ts); only `import type` from 'tap'.", allowTypeImports: true }]
      }]
    }
  },
  {
    // TypeBox idiom: a schema constant and its Static<> type share one name.
    files: ['src/schemas/**/*.ts', 'src/routes/tenant/**/schemas.ts', 'src/routes/tenant/pagination.ts'],
    rules: { '@typescript-eslint/no-redeclare': 'off' }
  }
]
