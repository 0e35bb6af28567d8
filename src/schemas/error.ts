import { Type, type Static } from '@sinclair/typebox'

export const ErrorBody = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String({ description: 'Stable, machine-readable error code (see README)' }),
  error: Type.String(),
  message: Type.String()
}, { $id: 'ErrorBody', title: 'Error' })
export type ErrorBody = Static<typeof ErrorBody>
