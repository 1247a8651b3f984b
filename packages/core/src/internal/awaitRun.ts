/**
 * `EmbeddedActions.await`: polling a run to its end (or waiting for its run callback, with polls as the safety
 * net), and the bookkeeping of what the polls saw, for the metrics, the span and the learned run durations.
 * @internal
 */
import * as Clock from "effect/Clock"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type { ActionRuns } from "../ActionRuns.js"
import { ReadSent } from "../ActionRuns.js"
import type { Connections } from "../Connections.js"
import type { ActionRunId, AppId, ConnectionId, ConnectLink, EndUser, RunError, RunState } from "../Domain.js"
import { RunResult } from "../Domain.js"
import type { ActionRunFailed, RequestError } from "../Errors.js"
import { PollTimeout } from "../Errors.js"
import * as Metrics from "../Metrics.js"
import * as Polling from "../Polling.js"
import type { RunCallbacks } from "../RunCallbacks.js"
import type { RunEvent } from "../RunEvents.js"
import * as Deadline from "./deadline.js"
import * as Economy from "./economy.js"

/** The options `EmbeddedActions.await` takes (its `AwaitOptions`). @internal */
export interface AwaitRunOptions {
  readonly timeout?: Duration.DurationInput | undefined
  readonly callback?: boolean | undefined
  readonly reconnectLink?: boolean | Economy.LinkOptions | undefined
}

/** What the await needs from the program, built once. @internal */
export interface AwaitDeps<E> {
  readonly runs: ActionRuns["Type"]
  readonly connections: Connections["Type"]
  readonly callbacks: Option.Option<RunCallbacks["Type"]>
  readonly memory: Economy.Memory
  readonly openLink: (
    user: EndUser,
    app: AppId,
    reconnect: Option.Option<ConnectionId>,
    options?: Economy.LinkOptions
  ) => Effect.Effect<ConnectLink, E>
}

/**
 * What the polls (and a callback) saw of one run: polls made, when a poll last saw the run pending, when one saw
 * it end; when the last poll that answered pending was sent (for reconciling a callback with the polls); and, for
 * the learned duration, when the reads that saw it pending last and ended went out (see `ActionRuns.ReadSent`).
 * `record` turns it into the metrics, the span's attributes and a learned duration, once the await is over.
 */
class Progress {
  polls = 0
  lastPendingAt: number
  lastPendingSentAt: number | undefined = undefined
  /** When the last read that saw the run pending went out: its report, else when the poll was sent. */
  pendingFrom: number | undefined = undefined
  endedAt: number | undefined = undefined
  /** When the read that saw the run ended went out: its report, else its answer. */
  endedBy: number | undefined = undefined
  via: "poll" | "callback" = "poll"
  lastStatus: string | undefined = undefined

  constructor(readonly startedAt: number) {
    this.lastPendingAt = startedAt
  }

  /** Notes what a poll sent at `sentAt` saw at `now`; `wireAt`: when its read went out, if `get` reported it. */
  noteState(state: RunState, sentAt: number, wireAt: number | undefined, now: number): void {
    if (state._tag === "RunPending") {
      this.lastPendingAt = now
      this.lastPendingSentAt = sentAt
      this.pendingFrom = wireAt ?? sentAt
      this.lastStatus = state.status
    } else {
      this.endedAt = now
      this.endedBy = wireAt ?? now
    }
  }

  /**
   * Notes a callback received at `receivedAt`, at `now`. False when a poll sent after it was received still said
   * pending: the run itself has the last word, so the callback is discarded.
   */
  noteCallback(receivedAt: number, now: number): boolean {
    if (this.lastPendingSentAt !== undefined && this.lastPendingSentAt > receivedAt) return false
    this.endedAt = now
    // The run ended when Zapier posted it: the detection lag is from then (not from the last poll).
    this.lastPendingAt = Math.min(now, Math.max(this.lastPendingAt, receivedAt))
    this.via = "callback"
    return true
  }

  /** Learns the run's duration, forgets an ended run, and records the metrics and the span's attributes. */
  record(
    memory: Economy.Memory,
    user: EndUser,
    runId: ActionRunId,
    recent: Economy.RecentRun | undefined,
    learnedKey: string | undefined,
    error?: unknown
  ): Effect.Effect<void> {
    return Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (recent !== undefined && learnedKey !== undefined && this.endedAt !== undefined) {
        // It ended after the last poll that saw it pending, or after its creation when the first poll saw it
        // ended (then the midpoint is half the wait: learning only the upper bound would creep up by a round
        // trip with every run); a callback says when it ended. A read counts from when it went out on the wire
        // (`ActionRuns.ReadSent`: after any wait in the rate limiter or between retries), the offsets the plan
        // places being sends too: a read sent that late after the creation saw the run pending, or ended. A
        // read whose `get` did not report counts from the poll's send when it saw the run pending (it saw it
        // after that) and from its answer when it saw it ended (its send is no bound when it waited first, in a
        // rate limiter or between retries; the answer carries the round trip, which the plan then carries too).
        const hi = (this.via === "callback" ? this.endedAt : (this.endedBy ?? this.endedAt)) - recent.createdAt
        const sawPending = this.lastPendingAt > this.startedAt
        memory.learned.record(learnedKey, {
          lo:
            this.via === "callback" ? hi : sawPending ? (this.pendingFrom ?? this.lastPendingAt) - recent.createdAt : 0,
          hi
        })
      }
      // An ended run is not awaited again: only the runs still pending stay remembered.
      if (this.endedAt !== undefined) memory.recent.delete(user, runId)
      const endedAt = this.endedAt ?? now
      return Effect.zipRight(
        Effect.annotateCurrentSpan({
          "zapier.polls": this.polls,
          "zapier.run_ended": this.endedAt !== undefined,
          "zapier.run_ended_via": this.endedAt !== undefined ? this.via : "none"
        }),
        Metrics.recordAwait(
          {
            polls: this.polls,
            ended: this.endedAt !== undefined,
            elapsed: Duration.millis(endedAt - this.startedAt),
            lag: Duration.millis(endedAt - this.lastPendingAt)
          },
          error
        )
      )
    })
  }
}

/**
 * Builds `await` from the program's services.
 * @internal
 */
export const make =
  <E>(deps: AwaitDeps<E>) =>
  (
    user: EndUser,
    runId: ActionRunId,
    options?: AwaitRunOptions
  ): Effect.Effect<RunResult, RequestError | ActionRunFailed | PollTimeout> =>
    Effect.gen(function* () {
      const { callbacks, connections, memory, openLink, runs } = deps
      yield* Effect.annotateCurrentSpan({ "zapier.run_id": runId })
      const policy = yield* Polling.Policy
      const deadline = Duration.decode(options?.timeout ?? policy.deadline)
      const startedAt = yield* DateTime.now
      const progress = new Progress(DateTime.toEpochMillis(startedAt))
      // The adaptive schedule: polls placed where this action's runs usually end, for a run this program started.
      const recent = memory.recent.get(user, runId)?.value
      const learnedKey = recent === undefined ? undefined : Economy.learnedKey(recent)
      const planned =
        recent === undefined || learnedKey === undefined || policy.adaptive === false
          ? []
          : Economy.firstDelays(
              memory,
              learnedKey,
              policy,
              runs.heldReads?.() === true,
              recent.createdAt,
              progress.lastPendingAt
            )
      const failed = (errors: ReadonlyArray<RunError>) =>
        Effect.flip(
          Economy.runFailed({ connections, memory, openLink }, user, runId, errors, recent, options?.reconnectLink)
        )
      // The loop drives the Schedule by hand (a driver, not `Effect.repeat`): each step's input depends on how the
      // poll ended (a state, or a transient failure with its Retry-After hint, which stretches the next delay),
      // some failures are tolerated up to a count and others end the loop at once, and a success returns the
      // run's result rather than the schedule's output.
      const poll = (schedulePolicy: Polling.PolicyShape, plan: ReadonlyArray<Duration.Duration>) => {
        // When this loop's read went out, as its `get` reports it (ActionRuns.ReadSent); reset before each read.
        const wire: { at: number | undefined } = { at: undefined }
        const report = (at: number) => {
          wire.at = at
        }
        return Effect.gen(function* () {
          const driver = yield* Schedule.driver(Polling.schedule(schedulePolicy, plan))
          let input: Polling.PollInput
          let failures = 0
          while (true) {
            yield* Effect.orDie(driver.next(input))
            progress.polls++
            const sentAt = yield* Clock.currentTimeMillis
            wire.at = undefined
            const outcome = yield* Effect.either(runs.get(user, runId))
            if (outcome._tag === "Left") {
              const error = outcome.left
              const retryable =
                error._tag === "RateLimited" || error._tag === "ZapierUnavailable"
                  ? ++failures <= policy.maxConsecutiveErrors
                  : error._tag === "NotFound" &&
                    Duration.lessThanOrEqualTo(
                      DateTime.distanceDuration(startedAt, yield* DateTime.now),
                      policy.notFoundGrace
                    )
              if (!retryable) return yield* Effect.fail(error)
              input = { _tag: "Retry", retryAfter: error._tag === "RateLimited" ? error.retryAfter : undefined }
              continue
            }
            failures = 0
            const state: RunState = outcome.right
            input = state
            progress.noteState(state, sentAt, wire.at, yield* Clock.currentTimeMillis)
            switch (state._tag) {
              case "RunPending":
                continue
              case "RunSucceeded":
                return RunResult.make({ runId, results: state.results })
              case "RunFailed":
                return yield* failed(state.errors)
            }
          }
        }).pipe(Effect.provideService(ReadSent, report))
      }
      // With a callback expected: the bus's event, raced against polls on the safety-net schedule. A callback is
      // discarded when a poll sent after it was received still said pending (the run itself has the last word); a
      // failing bus falls back to the plain schedule.
      const fromCallback = (events: RunCallbacks["Type"]["events"]) =>
        Effect.gen(function* () {
          const event: RunEvent = yield* events.await(runId)
          if (!progress.noteCallback(DateTime.toEpochMillis(event.receivedAt), yield* Clock.currentTimeMillis)) {
            yield* Effect.logWarning(
              "A run callback was contradicted by a later poll that still saw the run pending; polling goes on"
            ).pipe(Effect.annotateLogs({ run_id: runId }))
            return yield* Effect.never
          }
          const state = event.state
          if (state._tag === "RunSucceeded") return RunResult.make({ runId, results: state.results })
          return yield* failed(state.errors)
        }).pipe(
          Effect.catchTag("RunEventsUnavailable", (error) =>
            Effect.zipRight(
              Effect.logWarning("The run-event bus failed; polling this run on the plain schedule").pipe(
                Effect.annotateLogs({ run_id: runId, reason: error.reason })
              ),
              poll(policy, planned)
            )
          )
        )
      const awaiting =
        options?.callback === true && Option.isSome(callbacks)
          ? Effect.raceFirst(
              poll({ ...policy, ...callbacks.value.safetyNet }, []),
              fromCallback(callbacks.value.events)
            )
          : poll(policy, planned)
      const record = (error?: unknown) => progress.record(memory, user, runId, recent, learnedKey, error)
      const settled = yield* Deadline.timeoutOption(awaiting, deadline).pipe(Effect.tapError((error) => record(error)))
      if (Option.isNone(settled)) {
        const lastStatus = progress.lastStatus
        const timeout = new PollTimeout({ runId, waited: deadline, ...(lastStatus ? { lastStatus } : {}) })
        yield* record(timeout)
        return yield* timeout
      }
      yield* record()
      return settled.value
    })
