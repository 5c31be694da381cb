import type { Command } from 'commander'
import { serverModules } from '../shared.ts'

export function register(program: Command): void {
  program
    .command('nginx-config')
    .description('print an nginx front for this server: content-addressed files from disk, private builds through auth_request, the rest proxied')
    .option('--listen <address>', 'what nginx listens on (an nginx `listen` value)', '80')
    .option('--upstream <host:port>', "flatdepot's address as nginx reaches it (default: the configured port on 127.0.0.1)")
    .option('--server-name <names>', 'an nginx `server_name` value')
    .action(async (options: { listen: string; upstream?: string; serverName?: string }) => {
      const { loadConfig } = await serverModules()
      const config = loadConfig()
      const { nginxConfig } = await import('../../nginx/config.ts')
      process.stdout.write(nginxConfig(config, { listen: options.listen, upstream: options.upstream ?? `127.0.0.1:${config.port}`, ...(options.serverName ? { serverName: options.serverName } : {}) }))
    })
}
