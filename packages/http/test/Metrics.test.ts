/**
 * The metrics this package records (core's `Metrics`): token exchanges by token and outcome, retries by kind and
 * reason, 429 answers. Metrics are process-wide, so each test compares before and after.
 */

import { assert, describe, it } from "@effect/vitest"
import { ActionRuns, Connections, Domain, Metrics, TokenExchange } from "@effect-zapier/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import { ZapierHttp } from "../src/index.js"
import { app, driveClock, fakeZapier, generateKeys, json, options, scriptedClient, user } from "./kit.js"

const keys = await generateKeys("ES256")

const count = (metric: Metric.Metric.Counter<number>) => Effect.map(Metric.value(metric), (s) => s.count)
const exchanges = Effect.all({
  accessOk: count(Metrics.tokenExchangesFor("access", "success")),
  accessFailed: count(Metrics.tokenExchangesFor("access", "failure")),
  connectOk: count(Metrics.tokenExchangesFor("connect", "success"))
})

describe("token exchange metrics", () => {
  it.effect("counts access and connect exchanges, not cache hits", () => {
    const zapier = fakeZapier(() => json({ links: { next: null }, data: [] }))
    return Effect.gen(function* () {
      const tokens = yield* TokenExchange.TokenExchange
      const connections = yield* Connections.Connections
      const before = yield* exchanges
      yield* driveClock(tokens.accessToken(user))
      yield* driveClock(tokens.accessToken(user)) // cached
      yield* driveClock(connections.connectLink(user, app))
      const after = yield* exchanges
      assert.strictEqual(after.accessOk - before.accessOk, 1)
      assert.strictEqual(after.connectOk - before.connectOk, 1)
      assert.strictEqual(after.accessFailed - before.accessFailed, 0)
      assert.strictEqual(zapier.state.exchanges, 1)
    }).pipe(Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(zapier.layer))))
  })

  it.effect("counts a refused exchange as a failure", () => {
    const refusing = scriptedClient(() => json({ error: "invalid_client" }, 401))
    return Effect.gen(function* () {
      const tokens = yield* TokenExchange.TokenExchange
      const before = yield* exchanges
      const exit = yield* driveClock(tokens.accessToken(user), Duration.millis(250))
      const after = yield* exchanges
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(after.accessFailed - before.accessFailed, 1)
      assert.strictEqual(after.accessOk - before.accessOk, 0)
    }).pipe(Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(refusing.layer))))
  })
})

describe("retry and 429 metrics", () => {
  const retries = Effect.all({
    unavailable: count(Metrics.retriesFor("safe", "http_503")),
    throttled: count(Metrics.retriesFor("safe", "http_429")),
    createThrottled: count(Metrics.retriesFor("create", "http_429")),
    rateLimitedSafe: count(Metrics.rateLimitedFor("safe")),
    rateLimitedCreate: count(Metrics.rateLimitedFor("create"))
  })

  it.effect("counts each retried attempt by reason, and every 429 by kind of request", () => {
    const answers = [
      () => json({ errors: [] }, 503),
      () => json({ errors: [] }, 429, { "retry-after": "1" }),
      () => json({ links: { next: null }, data: [] })
    ]
    let n = 0
    const zapier = fakeZapier(() => answers[Math.min(n++, answers.length - 1)]!())
    return Effect.gen(function* () {
      const connections = yield* Connections.Connections
      const before = yield* retries
      const exit = yield* driveClock(connections.list(user, app), Duration.millis(250))
      const after = yield* retries
      assert.isTrue(Exit.isSuccess(exit))
      assert.strictEqual(after.unavailable - before.unavailable, 1)
      assert.strictEqual(after.throttled - before.throttled, 1)
      assert.strictEqual(after.rateLimitedSafe - before.rateLimitedSafe, 1)
      assert.strictEqual(after.rateLimitedCreate - before.rateLimitedCreate, 0)
    }).pipe(Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(zapier.layer))))
  })

  it.effect("a 429 on the create POST is counted under create (and retried: it was refused unprocessed)", () => {
    const answers = [
      () => json({ errors: [] }, 429, { "retry-after": "1" }),
      () => json({ data: { type: "run", id: "r1" } })
    ]
    let n = 0
    const zapier = fakeZapier(() => answers[Math.min(n++, answers.length - 1)]!())
    return Effect.gen(function* () {
      const runs = yield* ActionRuns.ActionRuns
      const before = yield* retries
      const exit = yield* driveClock(
        runs.create(user, { action: Domain.ActionId.make("a1"), connection: null, inputs: {} }),
        Duration.millis(250)
      )
      const after = yield* retries
      assert.isTrue(Exit.isSuccess(exit))
      assert.strictEqual(after.rateLimitedCreate - before.rateLimitedCreate, 1)
      assert.strictEqual(after.createThrottled - before.createThrottled, 1)
    }).pipe(Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(zapier.layer))))
  })
})
