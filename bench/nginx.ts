import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { freePort, waitFor } from '../test/support/server.ts'

/**
 * nginx serving `root` as a plain directory, the baseline the benchmarks measure flatdepot's
 * serving against: one worker, sendfile, long keep-alive. `extra` goes into the server block.
 */
export async function startNginx(work: string, root: string, options: { accessLog?: boolean; extra?: string; /** A path under root that answers 200 once nginx is up. */ probe?: string } = {}) {
  const port = await freePort()
  const dir = mkdtempSync(path.join(work, 'nginx-'))
  writeFileSync(path.join(dir, 'nginx.conf'), `
user root; worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 1024; }
http {
  ${options.accessLog ? `access_log ${dir}/access.log;` : 'access_log off;'} sendfile on; tcp_nopush on; keepalive_requests 100000;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  default_type application/octet-stream;
  server { listen 127.0.0.1:${port}; root ${root}; ${options.extra ?? ''} }
}`)
  const child = spawn('nginx', ['-c', path.join(dir, 'nginx.conf')], { stdio: 'ignore' })
  await waitFor('nginx', async () => ((await fetch(`http://127.0.0.1:${port}${options.probe ?? '/config'}`).catch(() => null))?.ok ? true : undefined), 10_000)
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') }
}
