/** The messages between a fleet test and its runner processes (IPC), decoded on arrival. */
import { Domain } from "@effect-zapier/core"
import { Schema } from "effect"

export const RunnerConfig = Schema.Struct({
  pgUrl: Schema.String,
  port: Schema.Number,
  apiUrl: Schema.String,
  tokenUrl: Schema.String,
  connectUrl: Schema.String,
  privateKeyPem: Schema.String,
  kid: Schema.String,
  crashAfterCreate: Schema.optional(Schema.Boolean)
})
export type RunnerConfig = typeof RunnerConfig.Type

export const Request = Schema.Union(
  Schema.Struct({ id: Schema.Number, op: Schema.Literal("start"), key: Schema.String, request: Schema.Unknown }),
  Schema.Struct({ id: Schema.Number, op: Schema.Literal("await", "result"), key: Schema.String }),
  Schema.Struct({ id: Schema.Number, op: Schema.Literal("complete"), state: Domain.RunSucceeded }),
  Schema.Struct({ id: Schema.Number, op: Schema.Literal("stats") })
)
export type Request = typeof Request.Type

export const Reply = Schema.Struct({
  id: Schema.Number,
  value: Schema.optional(Schema.String),
  error: Schema.optional(Schema.String),
  detail: Schema.optional(Schema.String),
  created: Schema.optional(Schema.Array(Schema.String)),
  pending: Schema.optional(Schema.Array(Schema.String))
})
export type Reply = typeof Reply.Type

export const Ready = Schema.Struct({ ready: Schema.Literal(true) })
