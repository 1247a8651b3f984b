/**
 * `ActionRuns` over `POST /v2/action-runs/` and `GET /v2/action-runs/{id}/`.
 *
 * - `create` sends the White Label guides' flat body `{action, authentication, input, callback_url?}` by default
 *   (option `runBodyShape: "data"`: the OpenAPI's `{data: {action, authentication, inputs, callback_url?}}`). A
 *   400 `parse_error` means Zapier did not process the body, so it is retried once in the other shape; the shape
 *   that worked is remembered for the rest of the layer's life. The POST is replayed only when it provably never
 *   reached Zapier (no connection could be made, 429, a 401 before processing); any ambiguous failure is
 *   `RunOutcomeUnknown`, so a run is never created twice.
 * - `get` maps `success` to `RunSucceeded`, `error` to `RunFailed`, and every other status (`waiting`, `queued`,
 *   `running`, unknown ones) and HTTP 202 to `RunPending`, whose `retryAfter` comes from a throttled error's
 *   `delay` or a `Retry-After` header.
 * - With `runReads: "long-poll"`, `get` reads `GET /actions/v2/runs/{id}?wait_seconds=N` instead (the Actions API's
 *   "Read an Action run"; its answer is read with the same schema as the v2 run, which it is documented to match
 *   as far as `status`, `results` and `errors` go): the attempt's timeout is `requestTimeout` + N, the rate
 *   limiter's bucket is `actions_api_results`, and a pending answer is `held` (read again at once), or, when it
 *   came back well before N seconds without a hint, pending with a 1 s `retryAfter`. A 404 there for a run that
 *   `GET /v2/action-runs/{id}/` knows switches the layer to v2 reads for good.
 *
 * Build it with `ZapierHttp.layer`.
 *
 * @example
 * ```ts
 * import { ActionRuns } from "@effect-zapier/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const runs = yield* ActionRuns.ActionRuns
 *   const runId = yield* runs.create(user, { action: action.id, connection, inputs: { text: "hi" } })
 *   const state = yield* runs.get(user, runId)
 * })
 * ```
 * @internal
 */

import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as ActionRuns from "@effect-zapier/core/ActionRuns"
import type { ActionRunId as ActionRunIdType, EndUser, RunState } from "@effect-zapier/core/Domain"
import { ActionRunId, RunError, RunFailed, RunPending, RunSucceeded } from "@effect-zapier/core/Domain"
import type * as Errors from "@effect-zapier/core/Errors"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Wire from "../Wire.js"
import type { Api } from "./api.js"
import { BadBody, decodeBody, fromPlatform, retryAfterHint } from "./errors.js"
import type { RunBodyShape } from "./options.js"
import { defaults } from "./settings.js"
import type { Raw } from "./transport.js"

const decodeCreated = decodeBody(Wire.CreateRunResponse)
const decodeRun = decodeBody(Wire.Run)

const other = (shape: RunBodyShape): RunBodyShape => (shape === "flat" ? "data" : "flat")

/** The create-run body in the given shape. @since 0.1.0 */
const createBody = (shape: RunBodyShape, run: ActionRuns.CreateRun): unknown => {
  const callback = run.callbackUrl !== undefined ? { callback_url: run.callbackUrl } : {}
  return shape === "flat"
    ? { action: run.action, authentication: run.connection, input: run.inputs, ...callback }
    : { data: { action: run.action, authentication: run.connection, inputs: run.inputs, ...callback } }
}

const terminal = new Set(["success", "error"])
const throttled = new Set(["throttled", "system_throttled"])

/**
 * The run states and errors below are made from values their types already guarantee (a validated `ActionRunId`,
 * strings, `Duration`s), so the classes' constructors skip re-validating them (`make(…, true)`): that check cost
 * more than the rest of mapping a read (a `RunPending` about 30 µs and 8 KB, a `RunSucceeded` about 2 µs).
 */
const trusted = true

const toRunError = (e: Wire.RunError): RunError =>
  RunError.make(
    {
      code: e.code ?? "unknown",
      title: e.title ?? e.code ?? "Error",
      ...(e.detail ? { detail: e.detail } : {}),
      ...(typeof e.delay === "number" && Number.isFinite(e.delay) && e.delay >= 0
        ? { delay: Duration.seconds(e.delay) }
        : {})
    },
    trusted
  )

/**
 * Maps a decoded run (and its HTTP status and server hint) onto core's run states.
 * @since 0.1.0
 */
export const toRunState = (
  runId: ActionRunIdType,
  httpStatus: number,
  run: Wire.Run | undefined,
  hint: Duration.Duration | undefined
): RunState => {
  const status = run?.data.status?.trim().toLowerCase()
  if (httpStatus !== 202 && status === "success") {
    const results = run?.data.results
    return RunSucceeded.make(
      {
        runId,
        results: results === undefined || results === null ? [] : Array.isArray(results) ? results : [results]
      },
      trusted
    )
  }
  const errors = (run?.data.errors ?? []).map(toRunError)
  if (httpStatus !== 202 && status === "error") return RunFailed.make({ runId, errors }, trusted)
  const delays = errors.flatMap((e) => (throttled.has(e.code) && e.delay !== undefined ? [e.delay] : []))
  const retryAfter = [...delays, ...(hint !== undefined ? [hint] : [])].reduce<Duration.Duration | undefined>(
    (max, d) => (max === undefined || Duration.greaterThan(d, max) ? d : max),
    undefined
  )
  return RunPending.make(
    {
      runId,
      status: status !== undefined && status.length > 0 ? status : httpStatus === 202 ? "accepted" : "unknown",
      ...(retryAfter !== undefined ? { retryAfter } : {})
    },
    trusted
  )
}

/**
 * The action runs service of one layer.
 * @since 0.1.0
 * @category constructors
 */
export const make = (api: Api): ActionRuns.Service => {
  const { settings } = api.env
  let shape: RunBodyShape = settings.runBodyShape
  const warnedStatuses = new Set<string>()

  const post = (user: EndUser, run: ActionRuns.CreateRun, bodyShape: RunBodyShape) =>
    api.create(user, {
      endpoint: "POST /v2/action-runs/",
      run: { connection: run.connection },
      request: HttpClientRequest.post(`${settings.apiUrl}/v2/action-runs/`).pipe(
        HttpClientRequest.bodyJson(createBody(bodyShape, run)),
        Effect.mapError((e) => fromPlatform(e, settings.requestTimeout))
      ),
      decode: (raw: Raw) =>
        Either.flatMap(decodeCreated(raw.status, raw.body), (created) => {
          const id = created.data.id.trim()
          return id.length > 0
            ? Either.right(ActionRunId.make(id))
            : Either.left(new BadBody({ status: raw.status, reason: "data.id is empty", transient: false }))
        })
    })

  const create = Effect.fn("ActionRuns.create")(function* (user: EndUser, run: ActionRuns.CreateRun) {
    yield* Effect.annotateCurrentSpan("zapier.action_id", run.action)
    if (run.connection !== null) yield* Effect.annotateCurrentSpan("zapier.connection", run.connection)
    const first = shape
    const runId = yield* post(user, run, first).pipe(
      Effect.catchIf(
        (e) => e._tag === "BadRequest" && e.errors.some((x) => x.code === "parse_error"),
        () =>
          // parse_error: Zapier did not process the body, so the other documented shape is safe to try once.
          post(user, run, other(first)).pipe(
            Effect.tap(() =>
              Effect.zipRight(
                Effect.sync(() => {
                  shape = other(first)
                }),
                Effect.logInfo("Zapier accepted the other create-run body shape; using it from now on").pipe(
                  Effect.annotateLogs({ shape: other(first) })
                )
              )
            )
          )
      )
    )
    yield* Effect.annotateCurrentSpan("zapier.run_id", runId)
    return runId
  })

  /** True once a long-poll read answered 404 for a run v2 knows: reads go to v2 from then on. */
  let longPollUnavailable = false
  const longPollTimeout = Duration.sum(settings.requestTimeout, Duration.seconds(settings.longPollWaitSeconds))

  const longPoll = Effect.fnUntraced(function* (user: EndUser, runId: ActionRunIdType) {
    const sentAt = yield* Clock.currentTimeMillis
    const state = yield* api.execute(user, {
      endpoint: "GET /actions/v2/runs/{id}",
      resource: `action run ${runId}`,
      request: Effect.succeed(
        HttpClientRequest.get(`${settings.apiUrl}/actions/v2/runs/${encodeURIComponent(runId)}`, {
          urlParams: { wait_seconds: String(settings.longPollWaitSeconds) }
        })
      ),
      decode: (raw: Raw) => {
        const decoded = decodeRun(raw.status, raw.body)
        if (raw.status === 202) return Either.right({ raw, run: Either.getOrUndefined(decoded) })
        return Either.map(decoded, (run) => ({ raw, run: run as Wire.Run | undefined }))
      },
      send: { timeout: longPollTimeout, bucket: defaults.longPollBucket }
    })
    const now = yield* Clock.currentTimeMillis
    const hint = retryAfterHint(state.raw.headers, now)
    const result = toRunState(runId, state.raw.status, state.run, hint)
    if (result._tag !== "RunPending") return result
    // Held for the whole wait: read again at once. Back early without a hint: wait 1 s (Zapier's guidance).
    const early = now - sentAt < (settings.longPollWaitSeconds - 1) * 1000
    return RunPending.make(
      {
        runId,
        status: result.status,
        held: true,
        ...(result.retryAfter !== undefined
          ? { retryAfter: result.retryAfter }
          : early
            ? { retryAfter: Duration.seconds(1) }
            : {})
      },
      trusted
    )
  })

  const get = Effect.fn("ActionRuns.get")((user: EndUser, runId: ActionRunIdType) =>
    Effect.zipRight(
      Effect.annotateCurrentSpan("zapier.run_id", runId),
      settings.runReads === "long-poll" && !longPollUnavailable ? longPollOrV2(user, runId) : pollV2(user, runId)
    )
  )

  const longPollOrV2 = Effect.fnUntraced(function* (user: EndUser, runId: ActionRunIdType) {
    const read = yield* Effect.either(longPoll(user, runId))
    if (Either.isRight(read)) return read.right
    if (read.left._tag !== "NotFound") return yield* Effect.fail(read.left)
    // Not documented: whether the Actions API reads runs created on /v2. A 404 there for a run v2 knows means it
    // does not: v2 from now on (a 404 on v2 too is the run's own NotFound).
    const v2 = yield* pollV2(user, runId)
    if (!longPollUnavailable) {
      longPollUnavailable = true
      yield* Effect.logInfo(
        "Zapier's long-poll read does not know runs created on /v2; reading runs on /v2 from now on"
      )
    }
    return v2
  })

  /** The v2 read's endpoint, decoder and known statuses: the same for every call, so made once per layer. */
  const v2Endpoint = "GET /v2/action-runs/{id}/"
  const decodeV2 = (raw: Raw) => {
    const decoded = decodeRun(raw.status, raw.body)
    // HTTP 202 means pending whatever the body says (it may even be empty).
    if (raw.status === 202) return Either.right({ raw, run: Either.getOrUndefined(decoded) })
    return Either.map(decoded, (run) => ({ raw, run: run as Wire.Run | undefined }))
  }
  const knownPending = new Set(["waiting", "queued", "running", "accepted"])
  /** A plain read reports when it went out (`ActionRuns.ReadSent`): `await` learns the action's durations from it. */
  const v2Send = { reportSent: true }

  /** A pending status this library does not know: warned about once per status (at most 50). */
  const warnUnknown = (status: string) =>
    Effect.suspend(() => {
      if (knownPending.has(status) || terminal.has(status) || warnedStatuses.has(status) || warnedStatuses.size >= 50) {
        return Effect.void
      }
      warnedStatuses.add(status)
      return Effect.logWarning("Zapier reported a run status this library does not know; treating it as pending").pipe(
        Effect.annotateLogs({ status: status.slice(0, 40) })
      )
    })

  const pollV2 = (user: EndUser, runId: ActionRunIdType): Effect.Effect<RunState, Errors.RequestError> =>
    api
      .execute(user, {
        endpoint: v2Endpoint,
        resource: `action run ${runId}`,
        request: HttpClientRequest.get(`${settings.apiUrl}/v2/action-runs/${encodeURIComponent(runId)}/`),
        decode: decodeV2,
        send: v2Send
      })
      .pipe(
        Effect.flatMap((state) =>
          Effect.clockWith((clock): Effect.Effect<RunState> => {
            const hint = retryAfterHint(state.raw.headers, clock.unsafeCurrentTimeMillis())
            const result = toRunState(runId, state.raw.status, state.run, hint)
            const annotated = Effect.annotateCurrentSpan(
              "zapier.run_status",
              result._tag === "RunPending" ? result.status : result._tag
            )
            return Effect.as(
              result._tag === "RunPending" ? Effect.zipRight(annotated, warnUnknown(result.status)) : annotated,
              result
            )
          })
        )
      )

  return ActionRuns.ActionRuns.of({
    create,
    get,
    heldReads: () => settings.runReads === "long-poll" && !longPollUnavailable
  })
}
