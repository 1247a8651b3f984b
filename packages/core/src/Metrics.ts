/**
 * The metrics of effect-zapier, as Effect `Metric`s: export them with `@effect/opentelemetry` (or read them with
 * `Metric.value`). Every label has a small, fixed set of values (an error tag, a retry reason, a kind of token),
 * never an id, a user or an input, so the number of series stays bounded.
 *
 * | metric | type | labels | recorded by |
 * |---|---|---|---|
 * | `zapier.runs.started` | counter | | `EmbeddedActions.start` (a run was created) |
 * | `zapier.runs.succeeded` | counter | | `EmbeddedActions.await` |
 * | `zapier.runs.failed` | counter | `error` (the error's `_tag`), `stage` (`start` or `await`) | `start`, `await` |
 * | `zapier.run.polls` | histogram | | `await`: GETs of one await, however it ended |
 * | `zapier.run.duration` | timer (ms) | | `await`: from its start to the run's end, in success or error (for `run`: create to end) |
 * | `zapier.run.detection_lag` | timer (ms) | | `await`: time between the last poll that saw the run pending and the one that saw it end, an upper bound of how late the end was noticed |
 * | `zapier.http.retries` | counter | `kind` (`safe`, `token`, `create`, `lease`), `reason` | `@effect-zapier/http`, per retried attempt |
 * | `zapier.http.rate_limited` | counter | `kind` | `@effect-zapier/http`, per 429 answer |
 * | `zapier.token.exchanges` | counter | `token` (`access`, `connect`), `outcome` (`success`, `failure`) | `@effect-zapier/http` |
 * | `zapier.inbox.leases` | counter | `result` (`messages`, `empty`) | `TriggerInbox`: leases made |
 * | `zapier.inbox.messages` | counter | `outcome` (`acked`, `released`, `failed`, `decode_failed`, `lapsed`) | `TriggerInbox`: what became of each delivered message |
 * | `zapier.inbox.wakeups` | counter | `source` (`events`, `drain`, `hint`, `reconnect`) | `TriggerInbox`: why the consumer looked for messages |
 * | `zapier.inbox.quarantined` | counter | | `TriggerInbox`: quarantined messages reported |
 * | `zapier.inbox.lag` | timer (ms) | | `TriggerInbox`: from a message's creation to the start of its handler |
 *
 * @example
 * ```ts
 * import { Metrics } from "@effect-zapier/core"
 * import { Effect, Metric } from "effect"
 *
 * const report = Effect.gen(function* () {
 *   const started = yield* Metric.value(Metrics.runsStarted)
 *   const failed = yield* Metric.value(Metrics.runsFailedWith("ActionRunFailed", "await"))
 *   return { started: started.count, failed: failed.count }
 * })
 * ```
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"

/**
 * Runs created.
 * @since 0.1.0
 * @category metrics
 */
export const runsStarted = Metric.counter("zapier.runs.started", {
  description: "Action runs created by EmbeddedActions.start",
  incremental: true
})

/**
 * Runs awaited to success.
 * @since 0.1.0
 * @category metrics
 */
export const runsSucceeded = Metric.counter("zapier.runs.succeeded", {
  description: "Action runs that ended in success (EmbeddedActions.await)",
  incremental: true
})

/**
 * Runs that failed, before creation (`stage: start`) or while awaited (`stage: await`).
 * @since 0.1.0
 * @category metrics
 */
export const runsFailed = Metric.counter("zapier.runs.failed", {
  description: "Action runs that failed, by error tag and stage (start: before or while creating it; await: after)",
  incremental: true
})

/**
 * Where a run failed.
 * @since 0.1.0
 */
export type Stage = "start" | "await"

/**
 * `runsFailed` for one error tag and stage.
 * @since 0.1.0
 * @category metrics
 */
export const runsFailedWith = (error: string, stage: Stage): Metric.Metric.Counter<number> =>
  runsFailed.pipe(Metric.tagged("error", error), Metric.tagged("stage", stage))

/**
 * Polls (GETs) of one await.
 * @since 0.1.0
 * @category metrics
 */
export const pollsPerRun = Metric.histogram(
  "zapier.run.polls",
  MetricBoundaries.fromIterable([1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 25, 30, 40, 60, 80]),
  "Polls (GET action run) made by one EmbeddedActions.await"
)

const durationBoundaries = [
  50, 100, 250, 500, 1000, 2000, 3000, 5000, 7500, 10_000, 15_000, 30_000, 60_000, 120_000, 180_000
]

/**
 * How long runs took, seen from `await`.
 * @since 0.1.0
 * @category metrics
 */
export const runDuration = Metric.timerWithBoundaries(
  "zapier.run.duration",
  durationBoundaries,
  "From the start of EmbeddedActions.await to the run's end (for run: from creation to the end)"
)

/**
 * An upper bound of how late a run's end was noticed.
 * @since 0.1.0
 * @category metrics
 */
export const detectionLag = Metric.timerWithBoundaries(
  "zapier.run.detection_lag",
  [10, 25, 50, 100, 250, 500, 750, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 8000, 10_000],
  "Time between the last poll that saw the run pending and the poll that saw it end"
)

/**
 * The kind of request a retry or a 429 belongs to (the retry policy differs per kind): `lease` is a Trigger
 * Inbox lease, replayed only when it provably never reached Zapier, like `create`.
 * @since 0.1.0
 */
export type RequestKind = "safe" | "token" | "create" | "lease"

/**
 * Retries of HTTP attempts.
 * @since 0.1.0
 * @category metrics
 */
export const retries = Metric.counter("zapier.http.retries", {
  description: "Retried Zapier HTTP attempts, by kind of request and reason",
  incremental: true
})

/**
 * `retries` for one kind of request and reason (`timeout`, `transport`, `connect_failed`, `bad_body`, or
 * `http_<status>`).
 * @since 0.1.0
 * @category metrics
 */
export const retriesFor = (kind: RequestKind, reason: string): Metric.Metric.Counter<number> =>
  retries.pipe(Metric.tagged("kind", kind), Metric.tagged("reason", reason))

/**
 * 429 answers from Zapier.
 * @since 0.1.0
 * @category metrics
 */
export const rateLimited = Metric.counter("zapier.http.rate_limited", {
  description: "HTTP 429 answers from Zapier, by kind of request",
  incremental: true
})

/**
 * `rateLimited` for one kind of request.
 * @since 0.1.0
 * @category metrics
 */
export const rateLimitedFor = (kind: RequestKind): Metric.Metric.Counter<number> =>
  rateLimited.pipe(Metric.tagged("kind", kind))

const tokenExchangesOptions = {
  description: "Token exchanges at Zapier's OAuth endpoint, by token and outcome",
  incremental: true
} as const

/** The key of `tokenExchanges`, for the counters `trackExchange` makes. */
const tokenExchangesKey = MetricKey.counter("zapier.token.exchanges", tokenExchangesOptions)

/**
 * Token exchanges at Zapier's OAuth endpoint.
 * @since 0.1.0
 * @category metrics
 */
export const tokenExchanges = Metric.counter("zapier.token.exchanges", tokenExchangesOptions)

/**
 * `tokenExchanges` for one token and outcome.
 * @since 0.1.0
 * @category metrics
 */
export const tokenExchangesFor = (
  token: "access" | "connect",
  outcome: "success" | "failure"
): Metric.Metric.Counter<number> =>
  tokenExchanges.pipe(Metric.tagged("token", token), Metric.tagged("outcome", outcome))

const tagOf = (error: unknown): string =>
  typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string"
    ? error._tag
    : "unknown"

/**
 * Counts a token exchange's outcome (a pipeable for the effect that exchanges).
 * @since 0.1.0
 * @category recording
 */
export const trackExchange = (
  token: "access" | "connect"
): (<A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>) => {
  // The counters and their increments are made once per call of trackExchange, not per exchange, each over a key
  // that carries its two labels: `tokenExchangesFor`'s series (the same labels in the same order, then the fiber's
  // metric labels), found once instead of per increment (a `Metric.tagged` counter makes a new key with its labels
  // and looks it up in the registry on every update).
  const counter = (outcome: "success" | "failure") =>
    Metric.increment(
      Metric.fromMetricKey(
        MetricKey.taggedWithLabels(tokenExchangesKey, [
          MetricLabel.make("token", token),
          MetricLabel.make("outcome", outcome)
        ])
      )
    )
  const success = counter("success")
  const failure = counter("failure")
  return (self) => Effect.tapBoth(self, { onSuccess: () => success, onFailure: () => failure })
}

/**
 * Counts the outcome of `EmbeddedActions.start`: a run started, or a failure by tag (stage `start`).
 * @since 0.1.0
 * @category recording
 */
export const trackStart = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.tapBoth(self, {
    onSuccess: () => Metric.increment(runsStarted),
    onFailure: (error) => Metric.increment(runsFailedWith(tagOf(error), "start"))
  })

/**
 * What one `await` saw, for {@link recordAwait}.
 * @since 0.1.0
 */
export interface AwaitProgress {
  /** GETs made. */
  readonly polls: number
  /** Whether a poll saw the run end (in success or in error). */
  readonly ended: boolean
  /** From the await's start to the poll that saw the run end (or to when it gave up). */
  readonly elapsed: Duration.Duration
  /** Between the last poll that saw the run pending (or the await's start) and the poll that saw it end. */
  readonly lag: Duration.Duration
}

/**
 * Records one `await`: its polls always; when the run ended, its duration and detection lag; then a success,
 * or the failure by tag (stage `await`) when `error` is given.
 * @since 0.1.0
 * @category recording
 */
export const recordAwait = (progress: AwaitProgress, error?: unknown): Effect.Effect<void> =>
  Effect.all(
    [
      progress.polls > 0 ? Metric.update(pollsPerRun, progress.polls) : Effect.void,
      progress.ended ? Metric.update(runDuration, progress.elapsed) : Effect.void,
      progress.ended ? Metric.update(detectionLag, progress.lag) : Effect.void,
      error === undefined ? Metric.increment(runsSucceeded) : Metric.increment(runsFailedWith(tagOf(error), "await"))
    ],
    { discard: true }
  )

/**
 * Leases made by the consumer.
 * @since 0.1.0
 * @category metrics
 */
export const inboxLeases = Metric.counter("zapier.inbox.leases", {
  description: "Trigger Inbox leases made by TriggerInbox, by result (messages or empty)",
  incremental: true
})

/**
 * `inboxLeases` for one result.
 * @since 0.1.0
 * @category metrics
 */
export const inboxLeasesWith = (result: "messages" | "empty"): Metric.Metric.Counter<number> =>
  inboxLeases.pipe(Metric.tagged("result", result))

/**
 * What became of the delivered messages.
 * @since 0.1.0
 * @category metrics
 */
export const inboxMessages = Metric.counter("zapier.inbox.messages", {
  description: "Trigger Inbox messages by outcome (acked, released, failed, decode_failed, lapsed)",
  incremental: true
})

/**
 * The outcome of one delivered message.
 * @since 0.1.0
 */
export type MessageOutcome = "acked" | "released" | "failed" | "decode_failed" | "lapsed"

/**
 * `inboxMessages` for one outcome.
 * @since 0.1.0
 * @category metrics
 */
export const inboxMessagesWith = (outcome: MessageOutcome): Metric.Metric.Counter<number> =>
  inboxMessages.pipe(Metric.tagged("outcome", outcome))

/**
 * Why the consumer looked for messages.
 * @since 0.1.0
 * @category metrics
 */
export const inboxWakeups = Metric.counter("zapier.inbox.wakeups", {
  description: "Trigger Inbox wake-ups by source (events, drain, hint, reconnect)",
  incremental: true
})

/**
 * Where a wake-up came from.
 * @since 0.1.0
 */
export type WakeupSource = "events" | "drain" | "hint" | "reconnect"

/**
 * `inboxWakeups` for one source.
 * @since 0.1.0
 * @category metrics
 */
export const inboxWakeupsFrom = (source: WakeupSource): Metric.Metric.Counter<number> =>
  inboxWakeups.pipe(Metric.tagged("source", source))

/**
 * Quarantined messages reported.
 * @since 0.1.0
 * @category metrics
 */
export const inboxQuarantined = Metric.counter("zapier.inbox.quarantined", {
  description: "Trigger Inbox messages found quarantined and reported by TriggerInbox",
  incremental: true
})

/**
 * From a message's creation to the start of its handler.
 * @since 0.1.0
 * @category metrics
 */
export const inboxLag = Metric.timerWithBoundaries(
  "zapier.inbox.lag",
  [10, 25, 50, 100, 250, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000, 300_000],
  "From a Trigger Inbox message's creation to the start of its handler"
)
