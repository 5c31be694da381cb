import { defineConfig } from 'prisma/config'

// No datasource here: `generate` does not need one, and env('DATABASE_URL') would throw when unset.
export default defineConfig({ schema: 'prisma/schema.prisma' })
