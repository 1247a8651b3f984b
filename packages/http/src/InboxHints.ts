/**
 * The `notification_url` route of Trigger Inboxes, ready to mount. Zapier POSTs `{"inbox_id",
 * "received_message_count", "redelivery"}` there when messages become available. Zapier documents no signature
 * for it, so the body is only ever a wake-up hint, never data: the handler reads the inbox id, wakes the
 * consumers of that inbox in this process (`TriggerInbox.Hints`), and answers 200. A forged hint costs at most one
 * lease; the messages themselves are only ever read from the Trigger Inbox API with the user's token.
 *
 * A body that is not such a hint (not JSON, no `inbox_id`, over 16 KiB) is answered 400 and wakes nothing.
 *
 * @example
 * ```ts
 * import { HttpRouter } from "@effect/platform"
 * import { InboxHints } from "@effect-zapier/http"
 *
 * const router = HttpRouter.empty.pipe(HttpRouter.post("/zapier/inbox-hints", InboxHints.handler()))
 * // provide TriggerInbox.layerHints to both this route and the consumers
 * ```
 * @since 0.1.0
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { InboxId } from "@effect-zapier/core/Domain"
import { Hints } from "@effect-zapier/core/TriggerInbox"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { Id } from "./Wire.js"

/**
 * The hint's body (`received_message_count` and `redelivery` are read but only logged).
 * @since 0.1.0
 */
export const Hint = Schema.Struct({
  inbox_id: Id,
  received_message_count: Schema.optional(Schema.NullOr(Schema.Number)),
  redelivery: Schema.optional(Schema.NullOr(Schema.Boolean))
})

const maxBytes = 16 * 1024
const refuse = (reason: string) =>
  Effect.as(
    Effect.logDebug("An inbox hint was refused").pipe(Effect.annotateLogs({ reason })),
    HttpServerResponse.unsafeJson({ error: reason }, { status: 400 })
  )

/**
 * The route: decode the hint, wake the inbox's consumers, answer 200.
 * @since 0.1.0
 */
export const handler = () =>
  Effect.gen(function* () {
    const hints = yield* Hints
    const request = yield* HttpServerRequest.HttpServerRequest
    const declared = Number(request.headers["content-length"])
    if (Number.isFinite(declared) && declared > maxBytes) return yield* refuse("too_large")
    const text = yield* Effect.either(request.text)
    if (Either.isLeft(text) || text.right.length > maxBytes) return yield* refuse("unreadable")
    let json: unknown
    try {
      json = JSON.parse(text.right)
    } catch {
      return yield* refuse("not_json")
    }
    const hint = Schema.decodeUnknownEither(Hint)(json)
    if (Either.isLeft(hint)) return yield* refuse("not_a_hint")
    const id = Schema.decodeUnknownEither(InboxId)(hint.right.inbox_id)
    if (Either.isLeft(id)) return yield* refuse("not_a_hint")
    yield* hints.notify(id.right)
    return HttpServerResponse.empty({ status: 200 })
  }).pipe(Effect.withSpan("InboxHints.handler"))
