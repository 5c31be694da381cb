import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseConfig } from '../../src/config/config.ts'
import { createLogger } from '../../src/log.ts'
import { startRepoSchedules } from '../../src/pipeline/schedule.ts'

const base = { secret: Buffer.alloc(32, 1).toString('base64'), 'build-repo-base': 'b' }

describe('scheduled prunes', () => {
  it('asks for each scheduled repo\'s prune at its times, with the minute it fired as the slot; repos without a schedule are left alone', async () => {
    const config = parseConfig({ ...base, repos: { stable: { path: 'r', prune: { depth: 1, schedule: '* * * * * *' } }, beta: { path: 'b2' } } }, '/srv/config.json')
    const calls: { repo: string; slot: string }[] = []
    const schedules = startRepoSchedules(config.repos.values(), { schedulePrune: async (repo, slot) => (calls.push({ repo, slot }), 1), scheduleMirrorSync: async () => null }, createLogger({ level: 'silent' }))
    try {
      await new Promise((resolve) => setTimeout(resolve, 2_300))
    } finally {
      schedules.stop()
    }
    assert.ok(calls.length >= 2, `fired every second: ${calls.length}`)
    assert.ok(calls.every((call) => call.repo === 'stable'))
    assert.ok(calls.every((call) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:00\.000Z$/.test(call.slot)), 'slots are whole minutes, the same on every server')
  })

  it('fires each upstream\'s sync schedule with its name', async () => {
    const upstream = { url: 'https://example.org/repo', 'gpg-key': 'k.gpg', refs: [{ id: ['org.example.*'] }], schedule: '* * * * * *' }
    const config = parseConfig({ ...base, repos: { stable: { path: 'r', upstreams: { flathub: upstream, other: { ...upstream, schedule: undefined } } } } }, '/srv/config.json')
    const calls: string[] = []
    const schedules = startRepoSchedules(config.repos.values(), { schedulePrune: async () => null, scheduleMirrorSync: async (repo, name) => (calls.push(`${repo}/${name}`), 1) }, createLogger({ level: 'silent' }))
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_300))
    } finally {
      schedules.stop()
    }
    assert.ok(calls.length >= 1 && calls.every((call) => call === 'stable/flathub'), calls.join(', '))
  })

  it('refuses a schedule that is not a cron pattern, saying what one looks like', () => {
    assert.throws(
      () => parseConfig({ ...base, repos: { stable: { path: 'r', prune: { schedule: 'daily' } } } }, '/srv/config.json'),
      /repos\.stable\.prune\.schedule: must be a cron pattern such as "0 3 \* \* \*"/,
    )
  })
})
