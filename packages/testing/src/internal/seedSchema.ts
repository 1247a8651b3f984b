/**
 * The seed decoded with Schema when the model is built: every number and duration the model computes with is
 * checked (a whole number where a count is meant, a finite non-negative duration), so a NaN, a negative, a
 * fraction, an Infinity or an unreadable duration is refused up front with {@link InvalidSeed} instead of turning
 * into a model that throttles every request, keeps nothing, or pages by `NaN`.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as FZ from "./types.js"

/**
 * The seed given to `FakeZapier.layer` or `FakeZapierServer.layer` has a field the model cannot use: `field` is its
 * path in the seed (for example `retention.maxRuns`), `value` what was given, `allowed` what the field takes.
 * @since 0.3.0
 * @category errors
 */
export class InvalidSeed extends Schema.TaggedError<InvalidSeed>("@effect-zapier/testing/InvalidSeed")("InvalidSeed", {
  field: Schema.String,
  value: Schema.String,
  allowed: Schema.String
}) {
  override get message(): string {
    return `FakeZapier seed: ${this.field} is ${this.value}; it takes ${this.allowed}. Fix the seed given to FakeZapier.layer / FakeZapierServer.layer.`
  }
}

/** A whole number of at least `min`: refuses NaN, ±Infinity, fractions and anything below `min`. */
const wholeNumber = (min: number, allowed: string) =>
  Schema.declare((u): u is number => typeof u === "number" && Number.isSafeInteger(u) && u >= min, {
    message: () => allowed
  })

const positiveCount = wholeNumber(1, "a whole number of at least 1")
const count = wholeNumber(0, "a whole number of at least 0")

/** How many times a fault fires: a whole number of at least 1, or `Infinity` (every matching request). */
const times = Schema.declare(
  (u): u is number => u === Number.POSITIVE_INFINITY || (typeof u === "number" && Number.isSafeInteger(u) && u >= 1),
  { message: () => "a whole number of at least 1, or Infinity (every matching request)" }
)

/**
 * True for a number, bigint, `[seconds, nanos]` or string input below zero (or NaN): `Duration.decodeUnknown` reads
 * each of them as zero.
 */
const negative = (u: unknown): boolean => {
  if (typeof u === "number") return !(u >= 0)
  if (typeof u === "bigint") return u < 0n
  if (typeof u === "string") return u.trimStart().startsWith("-")
  if (Array.isArray(u)) return u.some((part) => typeof part !== "number" || !(part >= 0))
  return false
}

/**
 * A `Duration.DurationInput` that is finite and not negative (`positive`: above zero), decoded to a `Duration`.
 * Refuses what `Duration.decode` would throw on (an unreadable string) or quietly turn into zero (NaN, a negative).
 */
const duration = (positive: boolean) => {
  const allowed = positive
    ? `a finite duration above zero (a Duration, millis, or a string such as "2 seconds")`
    : `a finite duration of zero or more (a Duration, millis, or a string such as "2 seconds")`
  return Schema.transformOrFail(Schema.Unknown, Schema.DurationFromSelf, {
    strict: true,
    decode: (u, _, ast) => {
      const decoded = negative(u) ? Option.none() : Duration.decodeUnknown(u)
      return Option.isSome(decoded) &&
        Duration.isFinite(decoded.value) &&
        (!positive || Duration.greaterThan(decoded.value, Duration.zero))
        ? ParseResult.succeed(decoded.value)
        : ParseResult.fail(new ParseResult.Type(ast, u, allowed))
    },
    encode: (d) => ParseResult.succeed(d)
  })
}

const text = Schema.declare((u): u is string => typeof u === "string", { message: () => "a string" })

/** An HTTP status code: a whole number from 100 to 599. */
const httpStatus = Schema.declare(
  (u): u is number => typeof u === "number" && Number.isSafeInteger(u) && u >= 100 && u <= 599,
  { message: () => "a whole number from 100 to 599 (an HTTP status)" }
)

const flag = Schema.declare((u): u is boolean => typeof u === "boolean", { message: () => "true or false" })

/**
 * A fault as the model reads it when it fires: a status the server can send, durations it can wait (a `Delay`'s
 * `duration`, a `Status`'s `retryAfter`), and a `_tag` it knows.
 */
const FaultSchema = Schema.Union(
  Schema.Struct({
    _tag: Schema.Literal("Status"),
    status: httpStatus,
    code: Schema.optional(text),
    detail: Schema.optional(text),
    retryAfter: Schema.optional(duration(false)),
    retryAfterFormat: Schema.optional(Schema.Literal("seconds", "http-date")),
    afterCommit: Schema.optional(flag)
  }),
  Schema.Struct({ _tag: Schema.Literal("Delay"), duration: duration(false) }),
  Schema.Struct({ _tag: Schema.Literal("Disconnect"), afterCommit: Schema.optional(flag) }),
  Schema.Struct({ _tag: Schema.Literal("MalformedBody") }),
  Schema.Struct({
    _tag: Schema.Literal("Respond"),
    status: httpStatus,
    body: text,
    contentType: Schema.optional(text),
    headers: Schema.optional(Schema.Record({ key: Schema.String, value: text })),
    afterCommit: Schema.optional(flag)
  })
)

/** A fault rule: its counts and its fault (`endpoint` a string; `user` is matched as given). */
const FaultRule = Schema.Struct({
  endpoint: Schema.optional(text),
  skip: Schema.optional(count),
  times: Schema.optional(times),
  fault: FaultSchema
})

/**
 * The seed's shape as the model reads it. Only the fields it checks are listed; the rest of the seed (apps, users,
 * partner keys) is kept as given (`onExcessProperty: "preserve"`). The fault rules are checked as `injectFault`
 * checks them, and the model keeps them as given.
 */
const SeedSchema = Schema.Struct({
  accessTokenTtl: Schema.optional(duration(true)),
  connectTokenTtl: Schema.optional(duration(true)),
  scope: Schema.optional(text),
  connectUrl: Schema.optional(text),
  choicesPageSize: Schema.optional(positiveCount),
  rateLimitPerMinute: Schema.optional(count),
  rateLimitWindow: Schema.optional(duration(true)),
  resultsRateLimitPerMinute: Schema.optional(count),
  faults: Schema.optional(Schema.Array(FaultRule)),
  callbacks: Schema.optional(
    Schema.Struct({
      attempts: Schema.optional(positiveCount),
      retryDelay: Schema.optional(duration(false)),
      timeout: Schema.optional(duration(true))
    })
  ),
  retention: Schema.optional(
    Schema.Struct({
      runTtl: Schema.optional(duration(false)),
      maxRuns: Schema.optional(positiveCount),
      maxActionIds: Schema.optional(positiveCount)
    })
  )
})

/** The seed's settings, decoded: every duration a `Duration`, every count a whole number. */
export type DecodedSeed = typeof SeedSchema.Type

const decode = Schema.decodeUnknown(SeedSchema, { onExcessProperty: "preserve" })

/** What a value was, for the error's message: numbers as JavaScript prints them (`NaN`, `-1`, `Infinity`). */
const show = (u: unknown): string => {
  if (typeof u === "string") return JSON.stringify(u)
  if (typeof u === "number" || typeof u === "bigint" || typeof u === "boolean" || u == null) return String(u)
  if (Duration.isDuration(u)) return `Duration(${Duration.format(u)})`
  if (Array.isArray(u)) return "an array"
  return `a ${typeof u}`
}

const at = (root: unknown, path: ReadonlyArray<PropertyKey>): unknown =>
  path.reduce<unknown>(
    (node, key) => (typeof node === "object" && node !== null ? Reflect.get(node, key) : undefined),
    root
  )

/** The first issue of a decode of `root`: its path (`what` when it is the root), the value there, what it takes. */
const firstIssue = (error: ParseResult.ParseError, root: unknown, what: string) => {
  const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
  const path = issue?.path ?? []
  return {
    field: path.length === 0 ? what : path.map(String).join("."),
    value: show(at(root, path)),
    allowed: issue?.message ?? "an object"
  }
}

/** Decodes the seed's settings, failing with {@link InvalidSeed} on the first field the model cannot use. */
export const decodeSeed = (seed: FZ.Seed): Effect.Effect<DecodedSeed, InvalidSeed> =>
  Effect.mapError(decode(seed), (error) => new InvalidSeed(firstIssue(error, seed, "(the seed)")))

/**
 * A value given to a control method of `FakeZapier.FakeZapier` (`injectFault`, `setRateLimit`) that the model
 * cannot use: `method` is the control method, `field` the path in its argument (`fault.duration`, `skip`, or
 * `perMinute`), `value` what was given, `allowed` what the field takes. Nothing was changed.
 * @since 0.3.0
 * @category errors
 */
export class InvalidControl extends Schema.TaggedError<InvalidControl>("@effect-zapier/testing/InvalidControl")(
  "InvalidControl",
  {
    method: Schema.String,
    field: Schema.String,
    value: Schema.String,
    allowed: Schema.String
  }
) {
  override get message(): string {
    return `FakeZapier.${this.method}: ${this.field} is ${this.value}; it takes ${this.allowed}. Nothing was changed.`
  }
}

const decodeRule = Schema.decodeUnknown(FaultRule, { onExcessProperty: "preserve" })

/** Checks a fault rule given to `injectFault`; the rule is kept as given. */
export const checkFaultRule = (rule: FZ.FaultRule): Effect.Effect<FZ.FaultRule, InvalidControl> =>
  decodeRule(rule).pipe(
    Effect.as(rule),
    Effect.mapError((error) => new InvalidControl({ method: "injectFault", ...firstIssue(error, rule, "(the rule)") }))
  )

const decodeRateLimit = Schema.decodeUnknown(Schema.Struct({ perMinute: Schema.optional(count) }))

/** Checks the limit given to `setRateLimit`: a whole number of at least 0, or `undefined` (no limit). */
export const checkRateLimit = (perMinute: number | undefined): Effect.Effect<number | undefined, InvalidControl> =>
  decodeRateLimit({ perMinute }).pipe(
    Effect.as(perMinute),
    Effect.mapError(
      (error) => new InvalidControl({ method: "setRateLimit", ...firstIssue(error, { perMinute }, "perMinute") })
    )
  )
