/**
 * Area: connection webhooks. `POST /connections/v1/webhooks` subscribes a callback URL to
 * `connection.expiry_scheduled` and answers the subscription with its signing secret (`whsec_…`, shown once, as
 * Zapier does); `GET /connections/v1/webhooks` lists them without secrets. The control
 * `scheduleConnectionExpiry` plays Zapier announcing a connection's expiry: one
 * `{"type": "connection.expiry_scheduled", "expires_at", "data": {"id", "title"}}` event POSTed over real HTTP to
 * every active subscription, signed per Standard Webhooks (`webhook-id`, `webhook-timestamp` in Unix seconds,
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` keyed by the secret's decoded bytes).
 * One attempt per subscription; the answers are returned (and `redeliver` sends the same signed delivery again,
 * for a receiver's deduplication).
 *
 * @internal
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import { ApiFailure } from "../model/failures.js"
import type { Kit } from "../model/state.js"
import { randomUuid } from "../model/state.js"
import type { Routes, ServerKit } from "../server/kit.js"
import { describeIssue, isObject, json } from "../server/kit.js"

/** The endpoints of this area, as the ledger and fault rules name them. */
export const endpoints = {
  createConnectionWebhook: "POST /connections/v1/webhooks",
  listConnectionWebhooks: "GET /connections/v1/webhooks"
} as const

/** A subscription as the fake holds it. */
export interface ConnectionWebhookInfo {
  readonly id: string
  readonly eventType: string
  readonly callbackUrl: string
  /** The signing secret, `whsec_…` (what `create` answered once). */
  readonly secret: string
}

/** One delivery of an event to one subscription. */
export interface ConnectionWebhookDelivery {
  readonly subscription: string
  readonly url: string
  readonly webhookId: string
  /** The receiver's HTTP status, or `network` when it could not be reached. */
  readonly status: number | "network"
  /** Sends the very same signed delivery again (same id, timestamp and signature); returns the status. */
  readonly redeliver: Effect.Effect<number | "network">
}

/** The control methods of this area. */
export interface ConnectionWebhooksControl {
  /** The connection-webhook subscriptions created, with their signing secrets. */
  readonly connectionWebhooks: Effect.Effect<ReadonlyArray<ConnectionWebhookInfo>>
  /**
   * Zapier announces that `connection` expires at `expiresAt`: a signed `connection.expiry_scheduled` event is
   * POSTed to every subscription (one attempt each). Returns each delivery.
   */
  readonly scheduleConnectionExpiry: (
    connection: string,
    expiresAt: DateTime.Utc
  ) => Effect.Effect<ReadonlyArray<ConnectionWebhookDelivery>>
}

const toBase64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64")

const sign = (secret: string, id: string, timestamp: string, body: string) =>
  Effect.promise(async () => {
    const key = await globalThis.crypto.subtle.importKey(
      "raw",
      Buffer.from(secret.slice("whsec_".length), "base64"),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"]
    )
    const mac = await globalThis.crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${id}.${timestamp}.${body}`))
    return `v1,${toBase64(new Uint8Array(mac))}`
  })

const post = (url: string, headers: Record<string, string>, body: string) =>
  Effect.tryPromise({
    try: (signal) =>
      fetch(url, { method: "POST", headers, body, signal }).then(async (response) => {
        await response.arrayBuffer().catch(() => undefined)
        return response.status
      }),
    catch: () => "network" as const
  }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => "network" as const }), Effect.merge)

/** The model side: the subscriptions and the controls. */
export const model = (kit: Kit) => {
  const subscriptions = Ref.unsafeMake<ReadonlyArray<ConnectionWebhookInfo>>([])

  const create = (eventType: string, callbackUrl: string) =>
    Effect.gen(function* () {
      const secret = `whsec_${toBase64(globalThis.crypto.getRandomValues(new Uint8Array(24)))}`
      const info: ConnectionWebhookInfo = { id: yield* randomUuid, eventType, callbackUrl, secret }
      yield* Ref.update(subscriptions, (all) => [...all, info])
      return info
    })

  const scheduleConnectionExpiry = (connection: string, expiresAt: DateTime.Utc) =>
    Effect.gen(function* () {
      const body = JSON.stringify({
        type: "connection.expiry_scheduled",
        expires_at: DateTime.formatIso(expiresAt),
        data: { id: connection, title: `Connection ${connection}` }
      })
      const timestamp = String(Math.floor((yield* kit.now) / 1000))
      const targets = (yield* Ref.get(subscriptions)).filter((s) => s.eventType === "connection.expiry_scheduled")
      return yield* Effect.forEach(targets, (s) =>
        Effect.gen(function* () {
          const webhookId = `msg_${(yield* randomUuid).replace(/-/g, "")}`
          const headers = {
            "content-type": "application/json",
            "webhook-id": webhookId,
            "webhook-timestamp": timestamp,
            "webhook-signature": yield* sign(s.secret, webhookId, timestamp, body)
          }
          const send = post(s.callbackUrl, headers, body)
          const delivery: ConnectionWebhookDelivery = {
            subscription: s.id,
            url: s.callbackUrl,
            webhookId,
            status: yield* send,
            redeliver: send
          }
          return delivery
        })
      )
    })

  const control: ConnectionWebhooksControl = {
    connectionWebhooks: Ref.get(subscriptions),
    scheduleConnectionExpiry
  }
  return { create, subscriptions, control }
}

/** The model side of this area. */
export type Model = ReturnType<typeof model>

const CreateBody = Schema.Struct({
  event_type: Schema.Literal("connection.expiry_scheduled"),
  callback_url: Schema.String.pipe(Schema.pattern(/^https?:\/\/\S+$/), Schema.maxLength(2048))
})

const subscriptionJson = (s: ConnectionWebhookInfo) => ({
  id: s.id,
  event_type: s.eventType,
  callback_url: s.callbackUrl,
  is_active: true
})

/** The subscription routes (scopes are not checked: the fake's tokens carry none). */
export const routes = (server: ServerKit, m: Model): Routes => [
  HttpRouter.makeRoute(
    "POST",
    "/connections/v1/webhooks",
    server.api(endpoints.createConnectionWebhook, () =>
      Effect.gen(function* () {
        const req = yield* HttpServerRequest.HttpServerRequest
        const text = yield* Effect.orElseSucceed(req.text, () => "")
        const parsed = Either.try(() => JSON.parse(text) as unknown)
        if (Either.isLeft(parsed) || !isObject(parsed.right)) return yield* Effect.fail(ApiFailure.parseError())
        const request = yield* Schema.decodeUnknown(CreateBody)(parsed.right).pipe(
          Effect.mapError((e) => ApiFailure.invalid(`Invalid body: ${describeIssue(e)}`))
        )
        const created = yield* m.create(request.event_type, request.callback_url)
        return json({ ...subscriptionJson(created), secret: created.secret }, 201)
      })
    )
  ),
  HttpRouter.makeRoute(
    "GET",
    "/connections/v1/webhooks",
    server.api(endpoints.listConnectionWebhooks, () =>
      Effect.map(Ref.get(m.subscriptions), (all) => json({ count: all.length, results: all.map(subscriptionJson) }))
    )
  )
]
