/**
 * Area: the Trigger Inbox, its HTTP side: the routes under both documented prefixes (`/trigger-inbox/api/v1` and
 * `/trigger-inbox/v1`) and the server's background work (notification POSTs). The model, the control methods and
 * core's `TriggerInboxes` in memory are in `triggerInbox.ts`.
 *
 * The JSON is written from Zapier's Trigger Inbox reference: inboxes `{id, key, status, paused_reason,
 * notification_url, subscription: {app_key, action_key, inputs, connection_id}}`, lists `{count, next, previous,
 * results}`, leases `{lease_id, leased_until, results, inbox_attributes}`, refusals of a lease `409 {detail}`. An
 * invalid or expired bearer is answered `400 unauthenticated`, as the inbox errors page documents.
 *
 * @internal
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { Domain } from "@effect-zapier/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { ApiFailure } from "../model/failures.js"
import type { InboxRecord, MessageRecord, Refusal, Wakeup } from "../model/inbox.js"
import { userKey } from "../model/state.js"
import type { Routes, ServerKit } from "../server/kit.js"
import { apiError, describeIssue, isObject, json } from "../server/kit.js"

import { endpoints, type Model, prefixes } from "./triggerInbox.js"

// ---------------------------------------------------------------------------------------------------------------
// JSON (from Zapier's Trigger Inbox reference)
// ---------------------------------------------------------------------------------------------------------------

const iso = (millis: number) => new Date(millis).toISOString()

const inboxJson = (i: InboxRecord) => ({
  id: i.id,
  key: i.key,
  status: i.status,
  paused_reason: i.pausedReason,
  notification_url: i.notificationUrl,
  created_at: iso(i.createdAt),
  subscription: {
    app_key: i.subscription.appKey,
    action_key: i.subscription.actionKey,
    inputs: i.subscription.inputs,
    connection_id: i.subscription.connectionId
  }
})

const messageJson = (m: MessageRecord) => ({
  id: m.id,
  created_at: iso(m.createdAt),
  status: m.status,
  message_attributes: {
    lease_count: m.leaseCount,
    error_message: null,
    possible_duplicate_data: m.leaseCount > 1
  },
  payload: m.payload
})

const page = <A>(results: ReadonlyArray<A>, limit: number, offset: number) => ({
  count: results.length,
  next: null,
  previous: null,
  results: results.slice(offset, offset + limit)
})

const refusalResponse = (r: Refusal, now: number) =>
  r.status === 404 ? apiError(ApiFailure.notFound("inbox"), now) : json({ detail: r.detail, code: r.code }, r.status)

// ---------------------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------------------

const EnsureBody = Schema.Struct({
  key: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(100)),
  notification_url: Schema.optional(Schema.NullOr(Schema.String.pipe(Schema.maxLength(2048)))),
  subscription: Schema.Struct({
    app_key: Schema.String.pipe(Schema.minLength(1)),
    action_key: Schema.String.pipe(Schema.minLength(1)),
    inputs: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Unknown }), { default: () => ({}) }),
    connection_id: Schema.optionalWith(
      Schema.NullOr(
        Schema.Union(
          Schema.String,
          Schema.transform(Schema.Number, Schema.String, { strict: true, decode: String, encode: Number })
        )
      ),
      { default: () => null }
    )
  })
})
const PatchBody = Schema.Struct({ notification_url: Schema.NullOr(Schema.String.pipe(Schema.maxLength(2048))) })
const LeaseBody = Schema.Struct({
  lease_seconds: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 3600)), { default: () => 300 }),
  lease_limit: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 100)), { default: () => 10 })
})
const SettleBody = Schema.Struct({
  lease_id: Schema.String.pipe(Schema.minLength(1)),
  message_ids: Schema.optional(Schema.Array(Schema.String).pipe(Schema.minItems(1), Schema.maxItems(100)))
})

const body = <A, I>(schema: Schema.Schema<A, I>) =>
  Effect.gen(function* () {
    const req = yield* HttpServerRequest.HttpServerRequest
    const text = yield* Effect.orElseSucceed(req.text, () => "")
    const parsed = Either.try(() => (text.trim().length === 0 ? {} : (JSON.parse(text) as unknown)))
    if (Either.isLeft(parsed) || !isObject(parsed.right)) return yield* Effect.fail(ApiFailure.parseError())
    return yield* Schema.decodeUnknown(schema)(parsed.right).pipe(
      Effect.mapError((e) => ApiFailure.invalid(`Invalid body: ${describeIssue(e)}`))
    )
  })

/** Options of this area's routes. */
export interface RouteOptions {
  /** The heartbeat of the event stream; default 15 s. */
  readonly keepAliveInterval?: Duration.DurationInput | undefined
}

/** The routes, and the background work (notification POSTs, the lease sweeper) they need. */
export const routes = (server: ServerKit, m: Model, options: RouteOptions = {}): Routes => {
  const { handle, gated, model: kernel, pathOf } = server

  /** An inbox request: the bearer's user (400 `unauthenticated` when it is not valid), the gate, the body. */
  const inboxApi = (
    endpoint: string,
    run: (
      user: Domain.EndUser,
      token: string
    ) => Effect.Effect<
      HttpServerResponse.HttpServerResponse,
      ApiFailure,
      HttpServerRequest.HttpServerRequest | HttpRouter.RouteContext | HttpServerRequest.ParsedSearchParams
    >
  ) =>
    handle(endpoint)(
      Effect.gen(function* () {
        const req = yield* HttpServerRequest.HttpServerRequest
        const now = yield* kernel.now
        const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "")
        const user = match === null ? undefined : yield* Effect.either(kernel.authenticate(match[1]!))
        if (user === undefined || Either.isLeft(user)) {
          return {
            _tag: "Response",
            response: apiError(
              ApiFailure.fromStatus(400, "unauthenticated", "Invalid or expired authentication token."),
              now
            )
          } as const
        }
        const context = yield* Effect.context<
          HttpServerRequest.HttpServerRequest | HttpRouter.RouteContext | HttpServerRequest.ParsedSearchParams
        >()
        return yield* gated(
          { method: req.method, endpoint, path: pathOf(req), user: user.right },
          Effect.provide(run(user.right, match![1]!), context),
          (failure) => apiError(failure, now),
          (failure) => apiError(failure, now)
        )
      })
    )

  const idParam = Effect.map(HttpRouter.params, (p) => p.id ?? "")
  const answer = (effect: Effect.Effect<HttpServerResponse.HttpServerResponse, Refusal>) =>
    Effect.catchAll(effect, (r) => Effect.map(kernel.now, (now) => refusalResponse(r, now)))

  const ensure = inboxApi(endpoints.ensureInbox, (user) =>
    Effect.gen(function* () {
      const b = yield* body(EnsureBody)
      return yield* answer(
        Effect.map(
          m.inboxes.ensure(userKey(user), {
            key: b.key,
            notificationUrl: b.notification_url ?? null,
            subscription: {
              appKey: b.subscription.app_key,
              actionKey: b.subscription.action_key,
              inputs: b.subscription.inputs,
              connectionId: b.subscription.connection_id
            }
          }),
          (r) => json(inboxJson(r.inbox), r.created ? 201 : 200)
        )
      )
    })
  )

  const list = inboxApi(endpoints.listInboxes, (user) =>
    Effect.gen(function* () {
      const q = yield* HttpServerRequest.ParsedSearchParams
      const one = (k: string) => (typeof q[k] === "string" ? (q[k] as string) : undefined)
      const limit = Math.min(100, Math.max(1, Number(one("limit") ?? 100) || 100))
      const offset = Math.max(0, Number(one("offset") ?? 0) || 0)
      const all = yield* m.inboxes.list(userKey(user), { key: one("key"), status: one("status") })
      return json(page(all.map(inboxJson), limit, offset))
    })
  )

  const get = inboxApi(endpoints.getInbox, (user) =>
    Effect.flatMap(idParam, (id) => answer(Effect.map(m.inboxes.get(userKey(user), id), (i) => json(inboxJson(i)))))
  )
  const patch = inboxApi(endpoints.updateInbox, (user) =>
    Effect.gen(function* () {
      const id = yield* idParam
      const b = yield* body(PatchBody)
      return yield* answer(
        Effect.map(m.inboxes.setNotificationUrl(userKey(user), id, b.notification_url), (i) => json(inboxJson(i)))
      )
    })
  )
  const del = inboxApi(endpoints.deleteInbox, (user) =>
    Effect.flatMap(idParam, (id) =>
      answer(Effect.as(m.inboxes.remove(userKey(user), id), HttpServerResponse.empty({ status: 204 })))
    )
  )
  const pause = inboxApi(endpoints.pauseInbox, (user) =>
    Effect.flatMap(idParam, (id) =>
      answer(Effect.map(m.inboxes.pause(userKey(user), id, "user"), (i) => json(inboxJson(i))))
    )
  )
  const resume = inboxApi(endpoints.resumeInbox, (user) =>
    Effect.flatMap(idParam, (id) => answer(Effect.map(m.inboxes.resume(userKey(user), id), (i) => json(inboxJson(i)))))
  )
  const messages = inboxApi(endpoints.listMessages, (user) =>
    Effect.gen(function* () {
      const id = yield* idParam
      const q = yield* HttpServerRequest.ParsedSearchParams
      const status = typeof q.status === "string" ? q.status : undefined
      const limit = Math.min(100, Math.max(1, Number(q.limit ?? 100) || 100))
      const offset = Math.max(0, Number(q.offset ?? 0) || 0)
      return yield* answer(
        Effect.map(m.inboxes.messages(userKey(user), id, status), (all) =>
          json(page(all.map(messageJson), limit, offset))
        )
      )
    })
  )
  const lease = inboxApi(endpoints.lease, (user) =>
    Effect.gen(function* () {
      const id = yield* idParam
      const b = yield* body(LeaseBody)
      return yield* answer(
        Effect.map(m.inboxes.lease(userKey(user), id, { leaseSeconds: b.lease_seconds, limit: b.lease_limit }), (r) =>
          json({
            lease_id: r.leaseId,
            leased_until: r.leasedUntil === null ? null : iso(r.leasedUntil),
            results: r.messages.map(messageJson),
            inbox_attributes: { status: r.inbox.status, paused_reason: r.inbox.pausedReason }
          })
        )
      )
    })
  )
  const settle = (kind: "ack" | "release") =>
    inboxApi(kind === "ack" ? endpoints.ack : endpoints.release, (user) =>
      Effect.gen(function* () {
        const id = yield* idParam
        const b = yield* body(SettleBody)
        return yield* answer(
          Effect.map(m.inboxes.settle(kind, userKey(user), id, b.lease_id, b.message_ids), (done) =>
            json({
              [kind === "ack" ? "acked_id" : "released_id"]: b.lease_id,
              results: done.map((mid) => ({ id: mid, status: kind === "ack" ? "acked" : "available" }))
            })
          )
        )
      })
    )

  const keepAlive = Duration.decode(options.keepAliveInterval ?? Duration.seconds(15))
  const events = inboxApi(endpoints.events, (user, token) =>
    Effect.gen(function* () {
      const id = yield* idParam
      const found = yield* Effect.either(m.inboxes.get(userKey(user), id))
      const now = yield* kernel.now
      if (Either.isLeft(found)) return refusalResponse(found.left, now)
      const s = yield* Ref.get(m.kit.state)
      const expiresAt = Option.match(HashMap.get(s.accessTokens, token), {
        onNone: () => now,
        onSome: (r) => r.expiresAt
      })
      const encoder = new TextEncoder()
      // The stream ends when the client goes away (its socket closes), not at the next heartbeat.
      const socket = NodeHttpServerRequest.toIncomingMessage(yield* HttpServerRequest.HttpServerRequest).socket
      const gone = Effect.async<void>((resume) => {
        if (socket.destroyed) return resume(Effect.void)
        const done = () => resume(Effect.void)
        socket.once("close", done)
        return Effect.sync(() => socket.off("close", done))
      })
      const frames = Stream.merge(
        Stream.fromPubSub(m.inboxes.wakeups).pipe(
          Stream.filter((w) => w.inboxId === id),
          Stream.map((w) => `data: ${JSON.stringify({ inbox_id: w.inboxId, count: w.count })}\n\n`)
        ),
        Stream.repeatEffect(Effect.as(m.kit.clock.sleep(keepAlive), ": keep-alive\n\n"))
      ).pipe(
        // The server closes the stream when the access token expires.
        Stream.interruptWhen(m.kit.clock.sleep(Duration.millis(Math.max(0, expiresAt - now)))),
        Stream.interruptWhen(gone),
        Stream.map((frame) => encoder.encode(frame))
      )
      return HttpServerResponse.stream(Stream.concat(Stream.make(encoder.encode(": connected\n\n")), frames), {
        contentType: "text/event-stream",
        headers: { "cache-control": "no-cache" }
      })
    })
  )

  return prefixes.flatMap((prefix) => [
    HttpRouter.makeRoute("PUT", `${prefix}/inboxes`, ensure),
    HttpRouter.makeRoute("GET", `${prefix}/inboxes`, list),
    HttpRouter.makeRoute("GET", `${prefix}/inboxes/:id`, get),
    HttpRouter.makeRoute("PATCH", `${prefix}/inboxes/:id`, patch),
    HttpRouter.makeRoute("DELETE", `${prefix}/inboxes/:id`, del),
    HttpRouter.makeRoute("POST", `${prefix}/inboxes/:id/pause`, pause),
    HttpRouter.makeRoute("POST", `${prefix}/inboxes/:id/resume`, resume),
    HttpRouter.makeRoute("GET", `${prefix}/inboxes/:id/messages`, messages),
    HttpRouter.makeRoute("POST", `${prefix}/inboxes/:id/messages/lease`, lease),
    HttpRouter.makeRoute("POST", `${prefix}/inboxes/:id/messages/ack`, settle("ack")),
    HttpRouter.makeRoute("POST", `${prefix}/inboxes/:id/messages/release`, settle("release")),
    HttpRouter.makeRoute("GET", `${prefix}/inboxes/:id/events`, events)
  ])
}

/**
 * The server's background work: posts `{inbox_id, received_message_count, redelivery}` to an inbox's
 * `notification_url` for each wake-up (a hint, unsigned, as documented).
 */
export const background = (m: Model): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const wakeups = yield* PubSub.subscribe(m.inboxes.wakeups)
    const post = (w: Wakeup) =>
      Effect.gen(function* () {
        if (w.notificationUrl === null) return
        const url = w.notificationUrl
        const status = yield* Effect.tryPromise(() =>
          fetch(url, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ inbox_id: w.inboxId, received_message_count: w.count, redelivery: w.redelivery }),
            signal: AbortSignal.timeout(5000)
          }).then(async (r) => {
            await r.arrayBuffer().catch(() => undefined)
            return r.status
          })
        ).pipe(Effect.orElseSucceed(() => 0))
        const at = yield* m.kit.now
        yield* Ref.update(m.notifications, (all) => [
          ...all,
          { at, inbox: Domain.InboxId.make(w.inboxId), url, count: w.count, redelivery: w.redelivery, status }
        ])
      })
    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(wakeups.take, (w) => Effect.fork(post(w)))))
  })
