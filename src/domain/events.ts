import type { BuildEvent } from './build/events.ts'
import type { JobEvent } from './job/job.ts'
import type { RepoEvent } from './repo/repo.ts'
import type { TokenEvent } from './token/token.ts'

export type DomainEvent = BuildEvent | JobEvent | RepoEvent | TokenEvent
export type DomainEventType = DomainEvent['type']
