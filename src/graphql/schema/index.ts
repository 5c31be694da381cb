import { builder } from '../builder.ts'
import './scalars.ts'
import './errors.ts'
import './enums.ts'
import './repo.ts'
import './job.ts'
import './build.ts'
import './token.ts'
import './pipeline.ts'
import './audit.ts'

builder.queryType({})
builder.mutationType({})
builder.subscriptionType({})

export const schema = builder.toSchema({ sortSchema: true })
