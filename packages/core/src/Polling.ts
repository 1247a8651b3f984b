/**
 * The polling policy for action runs, and the `Schedule` built from it.
 *
 * Default: first poll after 500 ms, then ×1.5 per poll, capped at 5 s, each delay jittered by ±20 %, and an
 * overall deadline of 180 s. A server hint (a pending run's `retryAfter`, from `Retry-After` or a throttled run
 * error's `delay`) stretches the next wait. That finds a 2 s run with 3 GETs and a 60 s run with about 16.
 *
 * @example
 * ```ts
 * import { Domain, EmbeddedActions, Polling } from "@effect-zapier/core"
 * import { Duration, Effect } from "effect"
 *
 * const user = Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
 * const program = Effect.flatMap(EmbeddedActions.EmbeddedActions, (actions) =>
 *   actions.await(user, Domain.ActionRunId.make("run-1"))
 * )
 *
 * // Poll more patiently for the whole program:
 * const patient = program.pipe(
 *   Effect.provideService(Polling.Policy, { ...Polling.defaults, maxDelay: Duration.seconds(10) })
 * )
 * ```
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Schedule from "effect/Schedule"
import type { RunState } from "./Domain.js"

/** @since 0.1.0 */
export interface PolicyShape {
  /** Wait before the first poll. */
  readonly initialDelay: Duration.Duration
  /** Growth of the delay per poll. */
  readonly factor: number
  /** Cap of one delay (before jitter). */
  readonly maxDelay: Duration.Duration
  /** Relative jitter applied to every delay: 0.2 means ×[0.8, 1.2]. 0 turns it off. */
  readonly jitter: number
  /** Overall deadline of one `await`. */
  readonly deadline: Duration.Duration
  /** Consecutive transient failures (unavailable, rate limited) tolerated while polling. */
  readonly maxConsecutiveErrors: number
  /** How long a `NotFound` right after creation is treated as eventual consistency. */
  readonly notFoundGrace: Duration.Duration
  /**
   * How long `completeConnection` keeps re-checking a connection id that Zapier does not list yet (or still lists
   * as expired) after Connect UI reported it: the list may lag the redirect by a moment. The re-checks follow this
   * policy's delays (about 4 extra list requests in 5 s by default); `0` checks once.
   */
  readonly connectionGrace: Duration.Duration
  /**
   * Learn each action's run durations in the client and place the polls of later runs where that action's runs
   * usually end (see {@link schedule}); default true. Off: every run is polled on the fixed schedule above.
   */
  readonly adaptive?: boolean | undefined
}

/**
 * The defaults (see the module's description).
 * @since 0.1.0
 */
export const defaults: PolicyShape = {
  initialDelay: Duration.millis(500),
  factor: 1.5,
  maxDelay: Duration.seconds(5),
  jitter: 0.2,
  deadline: Duration.seconds(180),
  maxConsecutiveErrors: 3,
  notFoundGrace: Duration.seconds(5),
  connectionGrace: Duration.seconds(5),
  adaptive: true
}

/**
 * The policy in force: a `Context.Reference`, so it has the defaults unless a program provides another.
 * @since 0.1.0
 * @category tags
 */
export class Policy extends Context.Reference<Policy>()("@effect-zapier/core/Polling/Policy", {
  defaultValue: () => defaults
}) {}

/**
 * What the schedule sees after each poll: the last state, or a transient failure with its hint.
 * @since 0.1.0
 */
export type PollInput =
  | RunState
  | { readonly _tag: "Retry"; readonly retryAfter?: Duration.Duration | undefined }
  | undefined

const hintOf = (input: PollInput): Duration.Duration | undefined =>
  input === undefined ? undefined : "retryAfter" in input ? input.retryAfter : undefined

/**
 * The delays between polls: `initialDelay · factor^n` capped at `maxDelay`, jittered, and stretched to a server
 * hint carried by the schedule's input. Its output is the input it was given (`passthrough`).
 *
 * `planned` (the adaptive schedule, from the durations learned for the action) are the delays of the first polls,
 * placed where that action's runs usually end; once they are spent the run is longer than any seen, and the
 * schedule goes on with the fixed one from the delay it would have reached by then. A pending state that says the read was held by Zapier
 * (`held`, a long-poll read) is read again at once (or after its hint).
 *
 * @example
 * ```ts
 * import { Polling } from "@effect-zapier/core"
 * import { Effect, Schedule } from "effect"
 *
 * const firstDelay = Effect.gen(function* () {
 *   const driver = yield* Schedule.driver(Polling.schedule(Polling.defaults))
 *   yield* driver.next(undefined) // sleeps ~500 ms
 * })
 * ```
 * @since 0.1.0
 */
export const schedule = (
  policy: PolicyShape,
  planned: ReadonlyArray<Duration.Duration> = []
): Schedule.Schedule<PollInput, PollInput> => {
  // After a plan, the run is already `sum(planned)` old: the fixed schedule goes on from the delay it would have
  // reached by then (about (factor − 1) × the time elapsed), not from its first one.
  const elapsed = planned.reduce((sum, d) => sum + Duration.toMillis(d), 0)
  const from = Math.min(
    Duration.toMillis(policy.maxDelay),
    Math.max(Duration.toMillis(policy.initialDelay), (policy.factor - 1) * elapsed)
  )
  const capped = Schedule.exponential(
    planned.length === 0 ? policy.initialDelay : Duration.millis(from),
    policy.factor
  ).pipe(Schedule.union(Schedule.spaced(policy.maxDelay)))
  const jittered =
    policy.jitter > 0 ? Schedule.jitteredWith(capped, { min: 1 - policy.jitter, max: 1 + policy.jitter }) : capped
  const [first, ...rest] = planned
  const typed: Schedule.Schedule<unknown, PollInput> =
    first === undefined ? jittered : Schedule.andThen(Schedule.fromDelays(first, ...rest), jittered)
  return Schedule.passthrough(typed).pipe(
    Schedule.modifyDelay((input, delay) => {
      const hint = hintOf(input)
      if (input !== undefined && input._tag === "RunPending" && input.held === true) return hint ?? Duration.zero
      return hint !== undefined && Duration.greaterThan(hint, delay) ? hint : delay
    })
  )
}
