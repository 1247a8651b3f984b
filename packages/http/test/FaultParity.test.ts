/**
 * One fault, one error: every status a fault can inject ends in the same typed error whether the client is the
 * in-memory fake (`FakeZapier.layer`) or the live client over loopback HTTP against `FakeZapierServer`, for each
 * kind of request (the token exchange, a GET, the create-run POST). The live client makes one attempt (no
 * retries, no client-side rate limit) and the fault hits every request to the endpoint, so both sides see the
 * same single answer.
 */
import { assert, describe, it } from "@effect/vitest"
import { ActionCatalog, ActionRuns, Connections, type Domain, TokenExchange } from "@effect-zapier/core"
import { FakeZapier } from "@effect-zapier/testing"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import { newCapture, seed, loopbackStack as stack } from "./kit.js"

const { Endpoint, Fault, sample } = FakeZapier

type Kind = "token" | "get" | "create"

const statuses = [400, 401, 403, 404, 408, 409, 422, 429, 500, 502, 503, 504] as const

const endpointOf = (kind: Kind) =>
  kind === "token" ? Endpoint.token : kind === "get" ? Endpoint.authentications : Endpoint.createRun

/** The request of `kind`, after whatever it needs first (a token; an action id for a create). */
const request = (kind: Kind, user: Domain.EndUser, status: number) =>
  Effect.gen(function* () {
    const zapier = yield* FakeZapier.FakeZapier
    const tokens = yield* TokenExchange.TokenExchange
    const fault = { endpoint: endpointOf(kind), times: 1_000, fault: Fault.status(status) }
    if (kind === "token") {
      yield* zapier.injectFault(fault)
      return yield* Effect.exit(tokens.accessToken(user))
    }
    const action = yield* Effect.flatMap(ActionCatalog.ActionCatalog, (c) =>
      c.resolve(user, sample.formatter, sample.uppercase)
    )
    yield* zapier.injectFault(fault)
    if (kind === "get") {
      return yield* Effect.exit(Effect.flatMap(Connections.Connections, (c) => c.list(user, sample.slack)))
    }
    return yield* Effect.exit(
      Effect.flatMap(ActionRuns.ActionRuns, (runs) =>
        runs.create(user, { action: action.id, connection: null, inputs: { text: "hi" } })
      )
    )
  })

/** What the error says, without the parts each side words its own way (messages, endpoints' paths). */
const shape = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "success"
  const failure = exit.cause._tag === "Fail" ? (exit.cause.error as Record<string, unknown>) : undefined
  if (failure === undefined) return `defect: ${exit.cause._tag}`
  const status = typeof failure.status === "number" ? ` ${failure.status}` : ""
  const code = typeof failure.error === "string" ? ` ${failure.error}` : ""
  return `${String(failure._tag)}${status}${code}`
}

const InMemory = FakeZapier.layer(seed)
const OverHttp = stack(newCapture(), { client: { maxAttempts: 1, rateLimit: false } })

type Needs =
  | FakeZapier.FakeZapier
  | TokenExchange.TokenExchange
  | Connections.Connections
  | ActionCatalog.ActionCatalog
  | ActionRuns.ActionRuns

/** A fresh fake (and client) per request, so no fault or cached token carries over. */
const run = (kind: Kind, status: number, layer: Layer.Layer<Needs, unknown>) =>
  request(kind, sample.user, status).pipe(Effect.map(shape), Effect.provide(layer))

describe("a fault gives the same error in memory and over HTTP", () => {
  // One test per kind and status: each builds two fakes (one a loopback server) and makes one request on each,
  // a second or less alone. The twelve statuses of a kind in one test took 11-13 s alone at load 18 and went past
  // vitest's 30 s default on a loaded machine; apart, every test is a short one and a failure names its status.
  for (const kind of ["token", "get", "create"] as const) {
    for (const status of statuses) {
      it.live(`${kind}: ${status}`, () =>
        Effect.gen(function* () {
          const memory = yield* run(kind, status, InMemory)
          const http = yield* run(kind, status, OverHttp)
          assert.notStrictEqual(memory, "success", `${kind} ${status} in memory`)
          assert.strictEqual(http, memory, `${kind} ${status}: in memory ${memory}, over HTTP ${http}`)
        })
      )
    }
  }
})
