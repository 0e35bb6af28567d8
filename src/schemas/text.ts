/** PostgreSQL text cannot hold NUL: a pattern that refuses it as invalid input (400), not a failed insert (500). */
export const NO_NUL = '^[^\\u0000]*$'
