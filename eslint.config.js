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
    // TypeBox idiom: a schema constant and its Static<> type share one name.
    files: ['src/schemas/**/*.ts', 'src/routes/tenant/**/schemas.ts', 'src/routes/tenant/pagination.ts'],
    rules: { '@typescript-eslint/no-redeclare': 'off' }
  }
]
