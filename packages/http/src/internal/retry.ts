/**
 * The one retry policy of the package, chosen per kind of request:
 *
 * - `safe` (GETs) and `token` (the token exchange: an extra token is harmless) retry transient failures: a
 *   transport failure, a timeout, a truncated body, HTTP 408/429/500/502/503/504, and (once) a 2xx body that does
 *   not decode.
 * - `create` (the create-run POST) retries only what provably never reached Zapier or was refused unprocessed:
 *   a connection that could not be made (see `errors.isUnsent`) and 429. Everything ambiguous stops at once and
 *   becomes `RunOutcomeUnknown`, so a run is never created twice.
 * - `lease` (a Trigger Inbox lease) retries the same way: a lost lease answer is not replayed (the messages it
 *   took come back after the lease); the caller sees `ZapierUnavailable` and leases again later.
 *
 * Delays: capped exponential backoff with full jitter (`random(0, min(maxDelay, base · 2^n))`), replaced by the
 * server's hint (`Retry-After` in seconds or as an HTTP-date, else `X-RateLimit-Reset`) when there is one, so no
 * attempt comes before the hint. A 429 without a hint waits `rateLimitCooldown` (Zapier documents a 60 s cooldown).
 * A hint above `maxRetryAfter` stops at once (a 429 becomes `RateLimited {retryAfter}` immediately).
 *
 * A client-wide retry budget (a token bucket, as in the AWS SDK's standard mode) keeps an outage from multiplying
 * load: each retry withdraws 5 tokens (10 after a timeout), a first-try success deposits 1, a success after
 * retries refunds the last retry's cost; with the bucket empty, failures are not retried.
 * @internal
 */
import * as Metrics from "@effect-zapier/core/Metrics"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Random from "effect/Random"
import type { AttemptError, Kind } from "./errors.js"
import { isTransientStatus, replaysOnlyUnsent, retryAfterHint } from "./errors.js"
import type { Settings } from "./settings.js"

/** The retries ended; `error` is the last attempt's failure. @internal */
export class Exhausted extends Data.TaggedError("Exhausted")<{
  readonly error: AttemptError
  readonly retryAfter: Duration.Duration | undefined
}> {}

/** A client-wide token bucket of retries. @internal */
export interface Budget {
  readonly withdraw: (cost: number) => Effect.Effect<boolean>
  readonly deposit: (amount: number) => Effect.Effect<void>
  /** `deposit`, done now (for code already in a step of its own). */
  readonly unsafeDeposit: (amount: number) => void
  readonly available: Effect.Effect<number>
}

/** @internal */
export const retryCost = 5
/** @internal */
export const timeoutCost = 10

/** @internal */
export const makeBudget = (capacity: number): Budget => {
  let tokens = capacity
  const unsafeDeposit = (amount: number): void => {
    tokens = Math.min(capacity, tokens + amount)
  }
  return {
    withdraw: (cost) =>
      Effect.sync(() => {
        if (tokens < cost) return false
        tokens -= cost
        return true
      }),
    deposit: (amount) => Effect.sync(() => unsafeDeposit(amount)),
    unsafeDeposit,
    available: Effect.sync(() => tokens)
  }
}

type Decision =
  | { readonly _tag: "Stop"; readonly retryAfter: Duration.Duration | undefined }
  | { readonly _tag: "Retry"; readonly delay: Duration.Duration; readonly retryAfter: Duration.Duration | undefined }

const stop = (retryAfter?: Duration.Duration): Decision => ({ _tag: "Stop", retryAfter })

/** The backoff before retry number `n` (1-based), before jitter. @internal */
export const backoffCap = (settings: Settings, n: number): Duration.Duration => {
  const base = Duration.toMillis(settings.retryBaseDelay)
  return Duration.millis(Math.min(Duration.toMillis(settings.retryMaxDelay), base * 2 ** (n - 1)))
}

const decide = (
  kind: Kind,
  error: AttemptError,
  attempts: number,
  decodeRetries: number,
  settings: Settings,
  now: number,
  jitter: number
): Decision => {
  const backoff = (): Decision => ({
    _tag: "Retry",
    delay: Duration.millis(Math.floor(jitter * Duration.toMillis(backoffCap(settings, attempts)))),
    retryAfter: undefined
  })
  const exhausted = attempts >= settings.maxAttempts
  switch (error._tag) {
    case "Local":
      return stop()
    case "Throttled":
      return stop(error.retryAfter)
    case "Unsent":
      return exhausted ? stop() : backoff()
    case "Transport":
    case "Timeout":
      return replaysOnlyUnsent(kind) || exhausted ? stop() : backoff()
    case "BadBody":
      if (replaysOnlyUnsent(kind) || exhausted) return stop()
      return error.transient || decodeRetries === 0 ? backoff() : stop()
    case "Status": {
      const status = error.status
      if (status === 429) {
        const hint = retryAfterHint(error.headers, now) ?? settings.rateLimitCooldown
        if (exhausted || Duration.greaterThan(hint, settings.maxRetryAfter)) return stop(hint)
        return { _tag: "Retry", delay: hint, retryAfter: hint }
      }
      if (replaysOnlyUnsent(kind) || !isTransientStatus(status)) return stop()
      const hint = retryAfterHint(error.headers, now)
      if (exhausted || (hint !== undefined && Duration.greaterThan(hint, settings.maxRetryAfter))) return stop(hint)
      return hint !== undefined ? { _tag: "Retry", delay: hint, retryAfter: hint } : backoff()
    }
  }
}

const describe = (error: AttemptError): string =>
  error._tag === "Status"
    ? `HTTP ${error.status}`
    : error._tag === "Timeout"
      ? "timeout"
      : error._tag === "Throttled"
        ? "client-side rate limit"
        : error.reason

/** A bounded label for a retry's reason (metrics and span attributes). */
const reasonOf = (error: AttemptError): string => {
  switch (error._tag) {
    case "Status":
      return `http_${error.status}`
    case "Timeout":
      return "timeout"
    case "Unsent":
      return "connect_failed"
    case "Transport":
      return "transport"
    case "BadBody":
      return "bad_body"
    case "Throttled":
      return "client_rate_limit"
    case "Local":
      return "local"
  }
}

/**
 * Runs `attempt` under the policy of `kind`. Each attempt is expected to carry its own timeout.
 * @internal
 */
export const withRetries = <A>(
  kind: Kind,
  endpoint: string,
  settings: Settings,
  budget: Budget,
  attempt: Effect.Effect<A, AttemptError>
): Effect.Effect<A, Exhausted> => {
  const loop = (attempts: number, decodeRetries: number, lastCost: number): Effect.Effect<A, Exhausted> =>
    // One frame for both outcomes (a tap then a catchAll would push two on every success).
    Effect.matchEffect(attempt, {
      onSuccess: (a) =>
        Effect.sync(() => {
          budget.unsafeDeposit(lastCost > 0 ? lastCost : 1)
          return a
        }),
      onFailure: (error) =>
        Effect.gen(function* () {
          if (error._tag === "Status" && error.status === 429) yield* Metric.increment(Metrics.rateLimitedFor(kind))
          const now = yield* Clock.currentTimeMillis
          const jitter = yield* Random.next
          const decision = decide(kind, error, attempts, decodeRetries, settings, now, jitter)
          if (decision._tag === "Stop") {
            return yield* new Exhausted({ error, retryAfter: decision.retryAfter })
          }
          const cost = error._tag === "Timeout" ? timeoutCost : retryCost
          if (!(yield* budget.withdraw(cost))) {
            yield* Effect.logDebug("Zapier request not retried: the retry budget is spent").pipe(
              Effect.annotateLogs({ endpoint, failure: describe(error) })
            )
            return yield* new Exhausted({ error, retryAfter: decision.retryAfter })
          }
          yield* Effect.logDebug("Zapier request failed; retrying").pipe(
            Effect.annotateLogs({
              endpoint,
              attempt: attempts,
              failure: describe(error),
              delay: Duration.format(decision.delay)
            })
          )
          const reason = reasonOf(error)
          yield* Metric.increment(Metrics.retriesFor(kind, reason))
          // On the span of the service method being retried (ActionRuns.get, Connections.list, …).
          yield* Effect.annotateCurrentSpan({ "zapier.attempt": attempts + 1, "zapier.retry_reason": reason })
          yield* Effect.sleep(decision.delay)
          return yield* loop(attempts + 1, decodeRetries + (error._tag === "BadBody" ? 1 : 0), cost)
        })
    })
  // Building the first attempt's effect is pure (nothing runs until it is run), so no `suspend` is needed.
  return loop(1, 0, 0)
}
