/**
 * What the benchmark and its fake-server child process say to each other (decoded with Schema on both sides).
 */
import * as Schema from "effect/Schema"

export const PublicKey = Schema.Struct({
  kid: Schema.String,
  alg: Schema.String,
  /** The SPKI PEM of the public key. */
  publicKeyPem: Schema.String
})

export type PublicKey = typeof PublicKey.Type

export const ServerConfig = Schema.Struct({
  /** End users seeded with one connection each (`u-0` … with `conn-0` …). */
  users: Schema.Int.pipe(Schema.nonNegative()),
  /** The partner's public keys. */
  keys: Schema.Array(PublicKey),
  /** The fake's per-minute limit on `/v2` requests (its minute is `60 s / timeScale` of real time). */
  rateLimitPerMinute: Schema.optional(Schema.Int.pipe(Schema.positive())),
  /** How many times faster than real time the fake's clock runs. */
  timeScale: Schema.Number.pipe(Schema.positive()),
  /** The epoch ms from which the scaled clock runs faster (the client uses the same origin). */
  clockOrigin: Schema.Number,
  /** `expires_in` of the access tokens, in the fake's seconds. */
  accessTokenTtlSeconds: Schema.Int.pipe(Schema.positive())
})
export type ServerConfig = typeof ServerConfig.Type

export const ServerConfigJson = Schema.parseJson(ServerConfig)

export const Ready = Schema.Struct({
  type: Schema.Literal("ready"),
  url: Schema.String,
  apiUrl: Schema.String,
  tokenUrl: Schema.String,
  connectUrl: Schema.String
})
export type Ready = typeof Ready.Type

export const Request = Schema.Union(
  Schema.Struct({ id: Schema.Number, op: Schema.Literal("summary") }),
  Schema.Struct({ id: Schema.Number, op: Schema.Literal("reset") }),
  Schema.Struct({ id: Schema.Number, op: Schema.Literal("clearFaults") }),
  /** Every token exchange answers after `millis` of real time. */
  Schema.Struct({ id: Schema.Number, op: Schema.Literal("tokenDelay"), millis: Schema.Number })
)
export type Request = typeof Request.Type

/** The fake's ledger, counted. */
export const Summary = Schema.Struct({
  requests: Schema.Number,
  byEndpoint: Schema.Record({ key: Schema.String, value: Schema.Number }),
  statuses: Schema.Record({ key: Schema.String, value: Schema.Number }),
  accessExchanges: Schema.Number,
  exchangeUsers: Schema.Number,
  runs: Schema.Number,
  polls: Schema.Number,
  /**
   * Mean ms from a run's create to its first read answered (on the fake's clock), over the runs read so far: the
   * polling plan's first delay plus the read's way there.
   */
  firstReadMillis: Schema.Number,
  /** The fake's process CPU (user + system) since it started, in µs (`process.cpuUsage()`). */
  cpuMicros: Schema.Number,
  /** The fake's time in garbage collection since it started, in ms (the `gc` performance entries). */
  gcMillis: Schema.Number
})
export type Summary = typeof Summary.Type

export const Reply = Schema.Struct({
  id: Schema.Number,
  summary: Schema.optional(Summary),
  error: Schema.optional(Schema.String)
})
export type Reply = typeof Reply.Type
