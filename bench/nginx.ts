import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
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

/**
 * wrk cycling through `paths` on `url` (a Lua script in `work`), for `seconds` after a 3 s
 * warm-up (page cache, the server's object cache): requests and megabytes per second, and
 * whether any answer was not a 2xx.
 */
export async function wrk(work: string, url: string, paths: readonly string[], options: { args?: readonly string[]; seconds?: number } = {}) {
  const exec = promisify(execFile)
  const args = options.args ?? ['-t', '2', '-c', '16']
  const script = path.join(work, `wrk-${Date.now()}.lua`)
  writeFileSync(script, `local paths = {${paths.map((p) => `"${p}"`).join(',')}}\nlocal i = 0\nrequest = function()\n  i = i % #paths + 1\n  return wrk.format("GET", paths[i])\nend\n`)
  await exec('wrk', [...args, '-d', '3s', '-s', script, url])
  const { stdout } = await exec('wrk', [...args, '-d', `${options.seconds ?? 8}s`, '-s', script, url])
  const transfer = /Transfer\/sec:\s+([\d.]+)([KMG]B)/.exec(stdout)
  const unit = { KB: 1 / 1024, MB: 1, GB: 1024 }[transfer?.[2] as 'KB' | 'MB' | 'GB'] ?? 0
  return { rate: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]), mbps: Number(transfer?.[1] ?? 0) * unit, errors: /Non-2xx/.test(stdout) ? stdout : null }
}
