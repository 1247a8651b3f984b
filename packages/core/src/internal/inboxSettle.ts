/**
 * What the consumer holds: per lease, which messages are still being handled, and what became of the others.
 * Outcomes are sent together when the last message of a lease settles (one ack, one release), or at the lease's
 * deadline for whatever settled by then (messages not started by then are released so they come back at once).
 * A message that settles after its lease was flushed is acked or released on its own.
 * @internal
 */
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as ParseResult from "effect/ParseResult"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { EndUser, InboxId, InboxMessage, LeaseId, MessageId } from "../Domain.js"
import * as Metrics from "../Metrics.js"
import type { Service as TriggerInboxesService } from "../TriggerInboxes.js"

/** @internal */
export type Outcome = "acked" | "failed" | "decode_failed" | "lapsed" | "released"

/** @internal */
export interface Tracker {
  readonly open: (lease: LeaseId, messages: ReadonlyArray<InboxMessage>, deadline: DateTime.Utc) => Effect.Effect<void>
  /** Marks the message started; false when its lease was already flushed (it must not be handled). */
  readonly start: (lease: LeaseId, message: MessageId) => Effect.Effect<boolean>
  readonly settle: (lease: LeaseId, message: MessageId, outcome: Outcome) => Effect.Effect<void>
  /** Flushes every lease, releasing the messages not started. */
  readonly releaseAll: Effect.Effect<void>
}

interface Held {
  readonly lease: LeaseId
  readonly deadline: DateTime.Utc
  readonly pending: Set<MessageId>
  readonly started: Set<MessageId>
  readonly acked: Array<MessageId>
  readonly released: Array<MessageId>
  closed: boolean
}

/** A ParseError described by path and kind of problem, never by value. @internal */
export const describeIssue = (error: ParseResult.ParseError): string => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const parts = issues.slice(0, 3).map((issue) => {
    const path = issue.path.length > 0 ? issue.path.map(String).join(".") : "payload"
    return `${path} ${issue._tag === "Missing" ? "is missing" : issue._tag === "Unexpected" ? "is not allowed" : "is invalid"}`
  })
  return parts.join("; ") + (issues.length > 3 ? ` (and ${issues.length - 3} more)` : "")
}

const transient = (tag: string) => tag === "RateLimited" || tag === "ZapierUnavailable"

/** @internal */
export const makeTracker = (
  inboxes: TriggerInboxesService,
  user: EndUser,
  inbox: InboxId
): Effect.Effect<Tracker, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const leases = new Map<LeaseId, Held>()

    /**
     * Sends an ack or a release, retrying transient failures (a lost answer too: both are idempotent by lease and
     * ids) until `until`; a lease that expired meanwhile is not an error: its messages come back.
     */
    const send = (kind: "ack" | "release", lease: LeaseId, ids: ReadonlyArray<MessageId>, until: DateTime.Utc) =>
      Effect.gen(function* () {
        if (ids.length === 0) return
        const call = kind === "ack" ? inboxes.ack : inboxes.release
        const driver = yield* Schedule.driver(
          Schedule.exponential(Duration.millis(200), 2).pipe(Schedule.union(Schedule.spaced(Duration.seconds(5))))
        )
        while (true) {
          const result = yield* Effect.either(call(user, inbox, lease, ids))
          if (result._tag === "Right") {
            if (kind === "ack") yield* Metric.incrementBy(Metrics.inboxMessagesWith("acked"), ids.length)
            return
          }
          const error = result.left
          const now = yield* DateTime.now
          if (error._tag === "LeaseExpired" || !transient(error._tag) || DateTime.greaterThanOrEqualTo(now, until)) {
            yield* Effect.logWarning(
              kind === "ack"
                ? "Trigger messages were handled but their ack did not go through; they will be delivered again"
                : "Trigger messages could not be released; they come back when their lease lapses"
            ).pipe(Effect.annotateLogs({ inbox, lease, messages: ids.length, failure: error._tag }))
            return
          }
          const hint = error._tag === "RateLimited" ? error.retryAfter : undefined
          if (hint !== undefined)
            yield* Effect.sleep(Duration.min(hint, Duration.millis(DateTime.distance(now, until))))
          else yield* Effect.orDie(driver.next(undefined))
        }
      })

    /** The lease's real end: the deadline plus the margin kept for the ack (bounded by the lease's own length). */
    const endOf = (held: Held) => DateTime.addDuration(held.deadline, Duration.seconds(10))

    const flush = (held: Held) =>
      Effect.suspend(() => {
        if (held.closed) return Effect.void
        held.closed = true
        leases.delete(held.lease)
        return Effect.all(
          [
            send("ack", held.lease, [...held.acked], endOf(held)),
            send("release", held.lease, [...held.released], endOf(held))
          ],
          { concurrency: 2, discard: true }
        )
      })

    /** Releases the messages not started, then flushes; `why` labels them in the metrics. */
    const closeNow = (held: Held, why: "lapsed" | "released") =>
      Effect.suspend(() => {
        if (held.closed) return Effect.void
        let unstarted = 0
        for (const id of held.pending) {
          if (held.started.has(id)) continue
          held.pending.delete(id)
          held.released.push(id)
          unstarted++
        }
        return Effect.zipRight(Metric.incrementBy(Metrics.inboxMessagesWith(why), unstarted), flush(held))
      })

    const open: Tracker["open"] = (lease, messages, deadline) =>
      Effect.gen(function* () {
        const held: Held = {
          lease,
          deadline,
          pending: new Set(messages.map((m) => m.id)),
          started: new Set(),
          acked: [],
          released: [],
          closed: false
        }
        leases.set(lease, held)
        const wait = Effect.flatMap(DateTime.now, (now) =>
          Effect.sleep(Duration.millis(Math.max(0, DateTime.distance(now, deadline))))
        )
        yield* Effect.forkIn(Effect.zipRight(wait, Effect.uninterruptible(closeNow(held, "lapsed"))), scope)
      })

    const start: Tracker["start"] = (lease, message) =>
      Effect.sync(() => {
        const held = leases.get(lease)
        if (held === undefined || held.closed || !held.pending.has(message)) return false
        held.started.add(message)
        return true
      })

    const settle: Tracker["settle"] = (lease, message, outcome) =>
      Effect.gen(function* () {
        if (outcome !== "acked") yield* Metric.increment(Metrics.inboxMessagesWith(outcome))
        const held = leases.get(lease)
        if (held === undefined || held.closed || !held.pending.has(message)) {
          // Its lease was flushed already: settle it on its own.
          const until = DateTime.addDuration(yield* DateTime.now, Duration.seconds(10))
          return yield* send(outcome === "acked" ? "ack" : "release", lease, [message], until)
        }
        held.pending.delete(message)
        if (outcome === "acked") held.acked.push(message)
        else held.released.push(message)
        if (held.pending.size === 0) yield* flush(held)
      })

    const releaseAll: Tracker["releaseAll"] = Effect.suspend(() =>
      Effect.all(
        [...leases.values()].map((held) => closeNow(held, "released")),
        { concurrency: "unbounded", discard: true }
      )
    )

    return { open, start, settle, releaseAll }
  })
