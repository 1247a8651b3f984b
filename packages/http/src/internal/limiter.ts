/**
 * What every rate-limiter store shares: the options, their defaults and validation, and the `RateLimited` error of
 * a wait past `maxWait`. `RateLimiter` re-exports the public part.
 *
 * @internal
 */
import * as Errors from "@effect-zapier/core/Errors"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/**
 * Options common to every store; every field has the default in `defaults`.
 * @since 0.1.0
 * @category options
 */
export interface Options {
  /** Slots per window; default 60. A positive integer. */
  readonly limit?: number | undefined
  /** The server's sliding window; default 60 seconds. Give the server's own figure: the margin is added to it. */
  readonly window?: Duration.DurationInput | undefined
  /**
   * Added to `window` when counting slots, for the time between taking a slot and the server counting the request;
   * default `max(1 second, 1 % of window)` (see `defaultMargin`). `0` counts exactly `window` (only for a limit
   * enforced in this process).
   */
  readonly margin?: Duration.DurationInput | undefined
  /** The longest `take` waits before failing with `RateLimited`; default 2 minutes (a full window and a cooldown). */
  readonly maxWait?: Duration.DurationInput | undefined
  /** The pause after a 429 without `Retry-After`; default 60 seconds (Zapier's cooldown). */
  readonly defaultPause?: Duration.DurationInput | undefined
  /** The budget `take()` and `pause()` use when called without a key; default `"zapier"`. */
  readonly key?: string | undefined
}

/**
 * The defaults: Zapier's published 60 requests per minute (counted over 61 s with the default margin), a 60 s
 * cooldown after a 429.
 * @since 0.1.0
 */
export const defaults = {
  limit: 60,
  window: Duration.minutes(1),
  maxWait: Duration.minutes(2),
  defaultPause: Duration.minutes(1),
  key: "zapier"
} as const

/**
 * The safety margin added to a `window` when none is given: `max(1 second, 1 % of window)`. One second covers the
 * time from taking a slot to the server counting the request (measured: up to ~250 ms across processes starting
 * at once, on loopback); the 1 % keeps long windows safe from clock-rate differences.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "@effect-zapier/http"
 * import { Duration } from "effect"
 *
 * Duration.toMillis(RateLimiter.defaultMargin(Duration.minutes(1))) // 1000: counted over 61 s
 * Duration.toMillis(RateLimiter.defaultMargin(Duration.hours(1))) // 36000
 * ```
 * @since 0.1.0
 */
export const defaultMargin = (window: Duration.DurationInput): Duration.Duration =>
  Duration.max(Duration.seconds(1), Duration.times(Duration.decode(window), 0.01))

const PositiveDuration = Schema.DurationFromSelf.pipe(
  Schema.filter((d) => Duration.greaterThan(d, Duration.zero) || "must be longer than zero")
)
const NonNegativeDuration = Schema.DurationFromSelf.pipe(
  Schema.filter((d) => Duration.greaterThanOrEqualTo(d, Duration.zero) || "must not be negative")
)
export const Settings = Schema.Struct({
  limit: Schema.Int.pipe(Schema.positive()),
  window: PositiveDuration,
  margin: NonNegativeDuration,
  maxWait: NonNegativeDuration,
  defaultPause: NonNegativeDuration,
  key: Schema.NonEmptyString
})
export type Settings = typeof Settings.Type

export const settings = (options: Options | undefined): Effect.Effect<Settings> =>
  Effect.suspend(() => {
    const o = options ?? {}
    const window = Duration.decode(o.window ?? defaults.window)
    return Schema.decodeUnknown(Settings)({
      limit: o.limit ?? defaults.limit,
      window,
      margin: o.margin !== undefined ? Duration.decode(o.margin) : defaultMargin(window),
      maxWait: Duration.decode(o.maxWait ?? defaults.maxWait),
      defaultPause: Duration.decode(o.defaultPause ?? defaults.defaultPause),
      key: o.key ?? defaults.key
    })
  }).pipe(
    Effect.catchTag("ParseError", (e) =>
      Effect.dieMessage(
        `Invalid RateLimiter options: ${ParseResult.TreeFormatter.formatErrorSync(e)}. ` +
          "Use a positive integer limit, a window longer than zero, a non-negative margin and non-negative waits."
      )
    )
  )

export const toMillis = (d: Duration.Duration): number =>
  Duration.isFinite(d) ? Duration.toMillis(d) : Number.MAX_VALUE

/** The window slots are counted over: the server's window plus the margin. */
export const countedMillis = (s: Settings): number => toMillis(Duration.sum(s.window, s.margin))

export const exceeded = (key: string, waitMillis: number) =>
  new Errors.RateLimited({ endpoint: `client-side budget "${key}"`, retryAfter: Duration.millis(waitMillis) })
