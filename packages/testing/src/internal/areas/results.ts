/**
 * Area: the Actions API's long-poll read, `GET /actions/v2/runs/{id}?wait_seconds=N` ("Read an Action run"): held
 * until the run ends or N seconds pass (at most 300), then `200` with the run, or `202` (read again). It is not
 * counted in the `/v2` per-minute limit (Zapier meters it in its own bucket, `actions_api_results`). Every read is
 * in the ledger (`GET /actions/v2/runs/{id}`) and, once answered, among the run's polls.
 *
 * @internal
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { ApiFailure } from "../model/failures.js"
import { sameUser } from "../model/state.js"
import type { Routes, ServerKit } from "../server/kit.js"
import { json } from "../server/kit.js"
import type * as Runs from "./runs.js"

/** The endpoints of this area, as the ledger and fault rules name them. */
export const endpoints = {
  readRun: "GET /actions/v2/runs/{id}"
} as const

const maxWaitSeconds = 300

/** The long-poll route, over the runs area's model. */
export const routes = (server: ServerKit, runs: Runs.Model): Routes => {
  const readRun = server.api(endpoints.readRun, (user) =>
    Effect.gen(function* () {
      const id = (yield* HttpRouter.params).id ?? ""
      if (server.options.longPollReads === "not-found") return yield* Effect.fail(ApiFailure.notFound(`run ${id}`))
      const raw = (yield* HttpServerRequest.ParsedSearchParams).wait_seconds
      const asked = Number(typeof raw === "string" ? raw : 0)
      const wait = Number.isFinite(asked) ? Math.min(maxWaitSeconds, Math.max(0, Math.floor(asked))) : 0
      const info = yield* runs.control.run(id).pipe(Effect.mapError(() => ApiFailure.notFound(`run ${id}`)))
      if (!sameUser(info.user, user)) return yield* Effect.fail(ApiFailure.notFound(`run ${id}`))
      if (info.status === "waiting" && wait > 0) {
        const now = yield* server.model.now
        const until = info.finishesAt === undefined ? now + wait * 1000 : Math.min(info.finishesAt, now + wait * 1000)
        if (until > now) yield* Effect.sleep(Duration.millis(until - now))
      }
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
        view.status === "waiting" ? 202 : 200
      )
    })
  )
  return [HttpRouter.makeRoute("GET", "/actions/v2/runs/:id", readRun)]
}
