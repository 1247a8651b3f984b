/**
 * Zapier's connection webhooks (early access): subscribe once (`create`, `list`), then mount `handler` at the
 * callback URL. Zapier signs each delivery per Standard Webhooks; the handler verifies it before anything else:
 *
 * - headers `webhook-id`, `webhook-timestamp` (Unix seconds), `webhook-signature` (space-separated `v1,<base64>`
 *   entries: one matching entry is enough, so a secret rotation works);
 * - the signature is HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{raw body}`, keyed by the base64-decoded
 *   part of the secret after `whsec_`, compared in constant time (WebCrypto's `verify`);
 * - a timestamp further than `tolerance` (5 minutes) in the past or the future is refused (replays, clock skew);
 * - a `webhook-id` seen before (within twice the tolerance) is answered 200 and not processed again (Zapier
 *   retries deliveries);
 * - bodies over `maxBodyBytes` (64 KiB) are refused unread.
 *
 * A verified `connection.expiry_scheduled` event becomes a `ConnectionExpiring` (the connection id and its
 * `expires_at`; `data.title`, which may hold personal data, is never kept) handed to `onExpiring`. Other event
 * types are acknowledged and ignored. {@link markExpiring} is the ready `onExpiring` that marks the stored connection
 * (`ConnectionStore.markExpiring`), so `ensureConnection` offers a reconnect before runs fail. A refused delivery is answered 401 (signature, time) or 400 (body) and
 * changes nothing; the refusal's reason is logged, never the body or the secret.
 *
 * @example
 * ```ts
 * import { HttpRouter } from "@effect/platform"
 * import { ConnectionWebhooks } from "@effect-zapier/http"
 * import { Effect, Redacted } from "effect"
 *
 * const router = HttpRouter.empty.pipe(
 *   HttpRouter.post(
 *     "/zapier/webhooks/connections",
 *     ConnectionWebhooks.handler({
 *       secret: Redacted.make(process.env.ZAPIER_WEBHOOK_SECRET ?? ""),
 *       // or ConnectionWebhooks.markExpiring: mark the stored connection, so ensureConnection offers a reconnect
 *       onExpiring: (event) => Effect.log("connection expiring", event.connection, event.expiresAt)
 *     })
 *   )
 * )
 * ```
 * @since 0.1.0
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as ConnectionStore from "@effect-zapier/core/ConnectionStore"
import * as Domain from "@effect-zapier/core/Domain"
import type * as Errors from "@effect-zapier/core/Errors"
import { WebhookRejected } from "@effect-zapier/core/Errors"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as InboxWire from "./InboxWire.js"
import type { Api } from "./internal/api.js"
import { decodeBody, fromPlatform } from "./internal/errors.js"
import { scrubServerSpan } from "./internal/serverSpan.js"

/**
 * The headers of one delivery.
 * @since 0.1.0
 */
export interface DeliveryHeaders {
  readonly id: string | undefined
  readonly timestamp: string | undefined
  readonly signature: string | undefined
}

/** @since 0.1.0 */
export interface VerifyOptions {
  /** The signing secret(s), `whsec_…` (several during a rotation). */
  readonly secret: Redacted.Redacted<string> | ReadonlyArray<Redacted.Redacted<string>>
  /** The largest distance between the delivery's timestamp and now; default 5 minutes. */
  readonly tolerance?: Duration.DurationInput | undefined
}

const fromBase64 = (text: string): Uint8Array<ArrayBuffer> | undefined => {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0 || text.length === 0) return undefined
  try {
    const binary = globalThis.atob(text)
    const bytes = new Uint8Array(binary.length)
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
    return bytes
  } catch {
    return undefined
  }
}

const importKey = (secret: Redacted.Redacted<string>) =>
  Effect.gen(function* () {
    const text = Redacted.value(secret).trim()
    const bytes = fromBase64(text.startsWith("whsec_") ? text.slice("whsec_".length) : text)
    if (bytes === undefined) return yield* new WebhookRejected({ reason: "bad_secret" })
    return yield* Effect.tryPromise({
      try: () => globalThis.crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]),
      catch: () => new WebhookRejected({ reason: "bad_secret" })
    })
  })

const encoder = new TextEncoder()

const concat = (a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> => {
  const out = new Uint8Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}

/**
 * Verifies one delivery's signature and timestamp against the raw body (the exact bytes received).
 *
 * @example
 * ```ts
 * import { ConnectionWebhooks } from "@effect-zapier/http"
 * import { Effect, Redacted } from "effect"
 *
 * const check = ConnectionWebhooks.verify(
 *   { secret: Redacted.make("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") },
 *   { id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: "1614265330", signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" },
 *   new TextEncoder().encode('{"test": 2432232314}')
 * )
 * // fails with WebhookRejected { reason: "too_old" } unless run at that timestamp (the Standard Webhooks test vector)
 * Effect.runPromiseExit(check)
 * ```
 * @since 0.1.0
 */
export const verify = Effect.fn("ConnectionWebhooks.verify")(function* (
  options: VerifyOptions,
  headers: DeliveryHeaders,
  body: Uint8Array
) {
  const { id, timestamp, signature } = headers
  if (!id || !timestamp || !signature) return yield* new WebhookRejected({ reason: "missing_headers" })
  if (!/^\d{1,12}$/.test(timestamp.trim())) return yield* new WebhookRejected({ reason: "bad_timestamp" })
  const sentAt = Number(timestamp.trim()) * 1000
  const now = yield* Clock.currentTimeMillis
  const tolerance = Duration.toMillis(Duration.decode(options.tolerance ?? Duration.minutes(5)))
  if (now - sentAt > tolerance) return yield* new WebhookRejected({ reason: "too_old" })
  if (sentAt - now > tolerance) return yield* new WebhookRejected({ reason: "too_new" })
  const signed = concat(encoder.encode(`${id}.${timestamp.trim()}.`), body)
  const candidates = signature
    .split(" ")
    .map((entry) => entry.trim())
    .flatMap((entry) => {
      const comma = entry.indexOf(",")
      if (comma === -1 || entry.slice(0, comma) !== "v1") return []
      const bytes = fromBase64(entry.slice(comma + 1))
      return bytes === undefined ? [] : [bytes]
    })
    .slice(0, 10)
  const secrets = Array.isArray(options.secret) ? options.secret : [options.secret as Redacted.Redacted<string>]
  for (const secret of secrets) {
    const key = yield* importKey(secret)
    for (const candidate of candidates) {
      // WebCrypto's HMAC verify compares in constant time.
      const ok = yield* Effect.promise(() => globalThis.crypto.subtle.verify("HMAC", key, candidate, signed))
      if (ok) return
    }
  }
  return yield* new WebhookRejected({ reason: "bad_signature" })
})

/**
 * Reads a verified body: a `connection.expiry_scheduled` event as `ConnectionExpiring`, any other type as
 * `Option.none()` (acknowledged, ignored).
 * @since 0.1.0
 */
export const decodeEvent = (
  webhookId: string,
  body: Uint8Array
): Either.Either<Option.Option<Domain.ConnectionExpiring>, WebhookRejected> => {
  const malformed = Either.left(new WebhookRejected({ reason: "malformed_event" }))
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body))
  } catch {
    return malformed
  }
  const event = Schema.decodeUnknownEither(InboxWire.ConnectionEvent)(json)
  if (Either.isLeft(event)) return malformed
  if (event.right.type !== "connection.expiry_scheduled") return Either.right(Option.none())
  const data = event.right.data
  const connection = (data?.id ?? data?.connection_id ?? data?.authentication_id ?? "").trim()
  const expiresAt = event.right.expires_at ? DateTime.make(event.right.expires_at) : Option.none()
  if (connection.length === 0 || Option.isNone(expiresAt)) return malformed
  return Either.right(
    Option.some(
      Domain.ConnectionExpiring.make({
        webhookId,
        connection: Domain.ConnectionId.make(connection),
        expiresAt: DateTime.toUtc(expiresAt.value)
      })
    )
  )
}

/**
 * The ready `onExpiring`: records the notice in the `ConnectionStore` (`markExpiring`: every stored connection
 * with that id is marked expiring at `expiresAt`), so `EmbeddedActions.ensureConnection` surfaces it
 * (`Connection.expiring`, with a reconnect link on request) and treats the connection as expired from then on.
 * Costs no Zapier request. A notice for a connection not stored here marks nothing and is logged at debug level.
 *
 * @example
 * ```ts
 * import { HttpRouter } from "@effect/platform"
 * import { ConnectionWebhooks } from "@effect-zapier/http"
 * import { Redacted } from "effect"
 *
 * // needs the ConnectionStore the app's EmbeddedActions uses
 * const route = HttpRouter.post(
 *   "/zapier/webhooks/connections",
 *   ConnectionWebhooks.handler({
 *     secret: Redacted.make(process.env.ZAPIER_WEBHOOK_SECRET ?? ""),
 *     onExpiring: ConnectionWebhooks.markExpiring
 *   })
 * )
 * ```
 * @since 0.2.0
 */
export const markExpiring = Effect.fn("ConnectionWebhooks.markExpiring")(function* (event: Domain.ConnectionExpiring) {
  const store = yield* ConnectionStore.ConnectionStore
  const marked = yield* store.markExpiring(event.connection, event.expiresAt)
  yield* Effect.annotateCurrentSpan({ "zapier.connection": event.connection, "zapier.connections_marked": marked })
  if (marked === 0) {
    yield* Effect.logDebug("A connection-expiry notice names a connection not stored here; nothing was marked").pipe(
      Effect.annotateLogs({ "zapier.connection": event.connection })
    )
  }
  return marked
})

/** @since 0.1.0 */
export interface HandlerOptions<E, R> extends VerifyOptions {
  /** What to do with a verified expiry notice (e.g. `ConnectionStore.markExpiring`). */
  readonly onExpiring: (event: Domain.ConnectionExpiring) => Effect.Effect<unknown, E, R>
  /** Bodies larger than this are refused unread; default 64 KiB. */
  readonly maxBodyBytes?: number | undefined
  /**
   * Records a `webhook-id` and says whether it is new. Default: in this process's memory (bounded; ids are kept
   * twice the tolerance). Give a shared store for a fleet.
   */
  readonly firstSeen?: ((webhookId: string) => Effect.Effect<boolean>) | undefined
}

const memoryDedupe = (ttlMillis: number) => {
  const seen = new Map<string, number>()
  return (webhookId: string) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      if (seen.size > 10_000) for (const [id, at] of seen) if (now - at > ttlMillis) seen.delete(id)
      const previous = seen.get(webhookId)
      if (previous !== undefined && now - previous <= ttlMillis) return false
      seen.set(webhookId, now)
      return true
    })
}

const refuse = (error: WebhookRejected) =>
  Effect.as(
    Effect.logWarning("A connection webhook delivery was refused").pipe(Effect.annotateLogs({ reason: error.reason })),
    HttpServerResponse.unsafeJson(
      { error: error.reason },
      {
        status:
          error.reason === "malformed_event" || error.reason === "too_large"
            ? 400
            : error.reason === "bad_secret"
              ? 500
              : 401
      }
    )
  )

/**
 * The ready-to-mount route: verify, dedupe, decode, hand a `ConnectionExpiring` to `onExpiring`, answer 200 (204
 * for a duplicate). If `onExpiring` fails, the answer is 500 so Zapier delivers it again (the id is then
 * forgotten so the retry is processed). The `webhook-signature` header is overwritten with `<redacted>` on the
 * request's spans (`@effect/platform`'s server tracing records request headers before any handler runs).
 * @since 0.1.0
 */
export const handler = <E, R>(options: HandlerOptions<E, R>) => {
  const tolerance = Duration.toMillis(Duration.decode(options.tolerance ?? Duration.minutes(5)))
  const maxBytes = options.maxBodyBytes ?? 64 * 1024
  const firstSeen = options.firstSeen ?? memoryDedupe(2 * tolerance)
  return Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    // The signature proves the body came from Zapier: keep it off the request's span, as the secret is.
    yield* scrubServerSpan({ headers: ["webhook-signature"] })
    const declared = Number(request.headers["content-length"])
    if (Number.isFinite(declared) && declared > maxBytes) {
      return yield* refuse(new WebhookRejected({ reason: "too_large" }))
    }
    const buffer = yield* Effect.either(request.arrayBuffer)
    if (Either.isLeft(buffer)) return yield* refuse(new WebhookRejected({ reason: "malformed_event" }))
    if (buffer.right.byteLength > maxBytes) return yield* refuse(new WebhookRejected({ reason: "too_large" }))
    const body = new Uint8Array(buffer.right)
    const headers: DeliveryHeaders = {
      id: request.headers["webhook-id"],
      timestamp: request.headers["webhook-timestamp"],
      signature: request.headers["webhook-signature"]
    }
    const verified = yield* Effect.either(verify(options, headers, body))
    if (Either.isLeft(verified)) return yield* refuse(verified.left)
    const webhookId = headers.id ?? ""
    const event = decodeEvent(webhookId, body)
    if (Either.isLeft(event)) return yield* refuse(event.left)
    if (!(yield* firstSeen(webhookId))) return HttpServerResponse.empty({ status: 204 })
    if (Option.isNone(event.right)) return HttpServerResponse.empty({ status: 200 })
    const handled = yield* Effect.either(options.onExpiring(event.right.value))
    if (Either.isLeft(handled)) {
      yield* Effect.logError("A verified connection-expiry notice could not be handled; Zapier will retry it").pipe(
        Effect.annotateLogs({ webhookId })
      )
      return HttpServerResponse.empty({ status: 500 })
    }
    return HttpServerResponse.empty({ status: 200 })
  }).pipe(Effect.withSpan("ConnectionWebhooks.handler"))
}

// ---------------------------------------------------------------------------------------------------------------
// Subscriptions
// ---------------------------------------------------------------------------------------------------------------

/**
 * A connection-webhook subscription. `secret` is only present in `create`'s answer (Zapier shows it once).
 * @since 0.1.0
 */
export interface Subscription {
  readonly id: string
  readonly eventType: string
  readonly callbackUrl: string
  readonly isActive: boolean
  readonly secret: Option.Option<Redacted.Redacted<string>>
}

/**
 * The request of `create`, as it goes on the wire.
 * @since 0.1.0
 */
export const createBody = (callbackUrl: string, eventType = "connection.expiry_scheduled") => ({
  event_type: eventType,
  callback_url: callbackUrl
})

/**
 * Maps a wire subscription.
 * @since 0.1.0
 */
export const toSubscription = (w: typeof InboxWire.WebhookSubscription.Type): Subscription => ({
  id: w.id,
  eventType: w.event_type,
  callbackUrl: w.callback_url,
  isActive: w.is_active ?? true,
  secret: Option.fromNullable(w.secret)
})

/** @since 0.1.0 */
export interface SubscriptionsService {
  /**
   * Subscribes `callbackUrl` to `connection.expiry_scheduled` (`POST /connections/v1/webhooks`, scope
   * `connection:webhook:write`). Keep the returned `secret`: Zapier shows it only once. Not retried on an
   * ambiguous failure (a replay could create a second subscription): list to reconcile.
   */
  readonly create: (
    user: Domain.EndUser,
    callbackUrl: string
  ) => Effect.Effect<Subscription, Errors.RequestError | Errors.RunOutcomeUnknown>
  /** The subscriptions (`GET /connections/v1/webhooks`, scope `connection:webhook:read`). */
  readonly list: (user: Domain.EndUser) => Effect.Effect<ReadonlyArray<Subscription>, Errors.RequestError>
}

/**
 * The subscription endpoints, on the live layer's token exchange (the token of the end user given; the scopes
 * `connection:webhook:write` / `connection:webhook:read` must be in the layer's `scope`).
 * @since 0.1.0
 * @category tags
 */
export class Subscriptions extends Context.Tag("@effect-zapier/http/ConnectionWebhooks/Subscriptions")<
  Subscriptions,
  SubscriptionsService
>() {}

const decodeCreated = decodeBody(InboxWire.WebhookSubscription)
const decodeList = decodeBody(InboxWire.WebhookSubscriptionList)

/** @internal */
export const makeSubscriptions = (api: Api): SubscriptionsService => {
  const url = `${api.env.settings.apiUrl}/connections/v1/webhooks`
  return {
    create: Effect.fn("ConnectionWebhooks.create")(function* (user: Domain.EndUser, callbackUrl: string) {
      return yield* api.create(user, {
        endpoint: "POST /connections/v1/webhooks",
        request: HttpClientRequest.bodyJson(HttpClientRequest.post(url), createBody(callbackUrl)).pipe(
          Effect.mapError((e) => fromPlatform(e, api.env.settings.requestTimeout))
        ),
        decode: (raw) => Either.map(decodeCreated(raw.status, raw.body), toSubscription)
      })
    }),
    list: Effect.fn("ConnectionWebhooks.list")(function* (user: Domain.EndUser) {
      return yield* api.execute(user, {
        endpoint: "GET /connections/v1/webhooks",
        request: Effect.succeed(HttpClientRequest.get(url)),
        decode: (raw) => Either.map(decodeList(raw.status, raw.body), (page) => page.results.map(toSubscription))
      })
    })
  }
}
