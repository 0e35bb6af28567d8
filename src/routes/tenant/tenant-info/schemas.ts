import { Type, type Static } from '@sinclair/typebox'

export const TenantInfo = Type.Object({
  slug: Type.String(),
  name: Type.String(),
  domains: Type.Array(Type.String())
}, { title: 'TenantInfo' })
export type TenantInfo = Static<typeof TenantInfo>
