/**
 * Area: the Actions API's long-poll read, `GET /actions/v2/runs/{id}?wait_seconds=N` ("Read an Action run"): held
 * until the run ends or N seconds pass (at most 300), then `200` with the run, or `202` with `Retry-After: 1` (not
 * finished: read again). Zapier meters it in its own bucket (`actions_api_results`), apart from the `/v2`
 * per-minute limit: the kernel counts it in a bucket of its own, which answers 429 when exceeded. Every read is in
 * the ledger (`GET /actions/v2/runs/{id}`) and, once answered, among the run's polls.
 *
 * Both faces hold the read the same way, on the model's clock: the route for `FakeZapierServer`, and, for
 * `FakeZapier.layer` with `runReads: "long-poll"`, core's `ActionRuns.get` as a client configured so reads it
 * (a pending answer is `held`, with its hint).
 *
 * @internal
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { ActionRuns, type Domain } from "@effect-zapier/core"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { ClientKit } from "../client.js"
import { ApiFailure } from "../model/failures.js"
import { sameUser } from "../model/state.js"
import type { Routes, ServerKit } from "../server/kit.js"
import { json } from "../server/kit.js"
import type * as Runs from "./runs.js"
import { toRunState } from "./runs.js"

/** The endpoints of this area, as the ledger and fault rules name them. */
export const endpoints = {
  readRun: "GET /actions/v2/runs/{id}"
} as const

const maxWaitSeconds = 300

/** The `Retry-After` (seconds) of a read that ends without the run's end: Zapier's "wait about 1 s". */
export const notFinishedRetryAfterSeconds = 1

/**
 * Holds a read of a pending run until it ends or `waitSeconds` pass (a run scripted to stay pending: the whole
 * wait), on the given clock; a run that has ended, another user's run or an unknown id is answered at once. A run
 * held by a gate (`holdRuns`) is waited for until its release, then until its end, within the same wait.
 */
const hold = (
  runs: Runs.Model,
  clock: { readonly now: Effect.Effect<number>; readonly sleep: (millis: number) => Effect.Effect<void> },
  user: Domain.EndUser,
  id: string,
  waitSeconds: number
) =>
  Effect.gen(function* () {
    const wait = Math.min(maxWaitSeconds, Math.max(0, Math.floor(waitSeconds)))
    const deadline = (yield* clock.now) + wait * 1000
    for (;;) {
      const info = yield* Effect.either(runs.control.run(id))
      if (info._tag === "Left" || !sameUser(info.right.user, user) || info.right.status !== "waiting") return
      const now = yield* clock.now
      const finishesAt = info.right.finishesAt
      const until = finishesAt === undefined ? deadline : Math.min(finishesAt, deadline)
      if (until <= now) return
      if (finishesAt !== undefined) return yield* clock.sleep(until - now)
      // Pending for now (scripted so, or held by a gate): the wait, or the gate's release, whichever comes first.
      const released = yield* Effect.raceFirst(
        Effect.as(clock.sleep(until - now), false),
        Effect.as(runs.awaitRelease(id), true)
      )
      if (!released) return
    }
  })

/** The long-poll route, over the runs area's model. */
export const routes = (server: ServerKit, runs: Runs.Model): Routes => {
  const clock = { now: server.model.now, sleep: (millis: number) => server.model.clock.sleep(Duration.millis(millis)) }
  const readRun = server.api(endpoints.readRun, (user) =>
    Effect.gen(function* () {
      const id = (yield* HttpRouter.params).id ?? ""
      if (server.options.longPollReads === "not-found") return yield* Effect.fail(ApiFailure.notFound(`run ${id}`))
      const raw = (yield* HttpServerRequest.ParsedSearchParams).wait_seconds
      const asked = Number(typeof raw === "string" ? raw : 0)
      yield* hold(runs, clock, user, id, Number.isFinite(asked) ? asked : 0)
      const view = yield* runs.getRun(user, id)
      return json(
        {
          data: {
            type: "run",
            id: view.id,
            status: view.status,
            results: view.results,
            errors: view.errors.map((e) => ({
              code: e.code,
              title: e.title,
              detail: e.detail ?? "",
              ...(e.delaySeconds !== undefined ? { delay: e.delaySeconds } : {}),
              meta: null
            }))
          }
        },
        view.status === "waiting" ? 202 : 200,
        view.status === "waiting" ? { "retry-after": String(notFinishedRetryAfterSeconds) } : {}
      )
    })
  )
  return [HttpRouter.makeRoute("GET", "/actions/v2/runs/:id", readRun)]
}

/**
 * Core's `ActionRuns` in memory, reading runs with the long-poll read: `create` is the runs area's, `get` is held
 * up to `waitSeconds` (a pending answer is `held`, with the 202's `Retry-After`), in its own rate-limit bucket.
 */
export const services = (
  client: ClientKit,
  runs: Runs.Model,
  created: ActionRuns.ActionRuns["Type"],
  waitSeconds: number
) => {
  const clock = {
    now: client.model.now,
    sleep: (millis: number) => client.model.clock.sleep(Duration.millis(millis))
  }
  const get = Effect.fn("ActionRuns.get")(function* (user: Domain.EndUser, runId: Domain.ActionRunId) {
    const view = yield* client
      .request(
        { method: "GET", endpoint: endpoints.readRun, path: `/actions/v2/runs/${runId}` },
        user,
        Effect.zipRight(hold(runs, clock, user, runId, waitSeconds), runs.getRun(user, runId))
      )
      .pipe(Effect.catchTag("RunOutcomeUnknown", Effect.die))
    return toRunState(runId, view, {
      held: true,
      retryAfter: Duration.seconds(notFinishedRetryAfterSeconds)
    })
  })
  return Context.make(
    ActionRuns.ActionRuns,
    ActionRuns.ActionRuns.of({ create: created.create, get, heldReads: () => true })
  )
}
