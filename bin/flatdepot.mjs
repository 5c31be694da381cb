#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx): no build step between a clone and a running server.
// More threads for file system work (uploads stage thousands of small files); must be set before
// libuv's pool first runs, which is why it is here.
process.env.UV_THREADPOOL_SIZE ??= '16'
const { register } = await import('tsx/esm/api')

register()
await import('../src/cli/main.ts')
