/**
 * `TriggerInboxes` over Zapier's Trigger Inbox API (`{apiUrl}{triggerInboxPath}`, default
 * `https://api.zapier.com/trigger-inbox/api/v1`), on the same token exchange, retry budget and rate limiter as the
 * other services.
 *
 * Which calls are retried, and why:
 *
 * | call | retried on transient failures? | why |
 * |---|---|---|
 * | `ensure` (`PUT /inboxes`) | yes | idempotent by `key`: a replay returns the same inbox |
 * | `get`, `list`, `messages` | yes | reads |
 * | `update`, `pause`, `resume`, `delete` | yes | setting the same state twice is the same state |
 * | `ack`, `release` | yes | idempotent by lease id and message ids |
 * | `lease` | only when it provably never reached Zapier (or 429) | a lost lease answer is not replayed: a second lease would take other messages; the ones the lost lease took come back when it expires. The caller gets `ZapierUnavailable` and leases again later |
 * | `events` | no (the consumer reconnects) | a long-lived stream |
 *
 * Error mapping, beyond the common one: `ensure` 409 → `InboxKeyConflict`; `lease` 409 (paused and drained, or
 * not leasable) → one `GET` of the inbox to say why: `InboxPaused` with its reason and its subscription's app and
 * connection, or `InboxNotActive`; `ack`/`release` 409 or 410 → `LeaseExpired` (inferred: the docs do not say
 * how an expired lease is refused); a 400 `unauthenticated` (how these routes refuse an expired token) is a 401:
 * the token is refreshed once and the call retried.
 *
 * Build it with `ZapierHttp.layer`.
 *
 * @example
 * ```ts
 * import { TriggerInboxes } from "@effect-zapier/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const inboxes = yield* TriggerInboxes.TriggerInboxes
 *   const lease = yield* inboxes.lease(user, inboxId, { limit: 10, leaseSeconds: 60 })
 * })
 * ```
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Domain from "@effect-zapier/core/Domain"
import * as Errors from "@effect-zapier/core/Errors"
import type * as TokenExchange from "@effect-zapier/core/TokenExchange"
import * as TriggerInboxes from "@effect-zapier/core/TriggerInboxes"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as InboxWire from "../InboxWire.js"
import type { Api } from "./api.js"
import { paginate } from "./api.js"
import {
  BadBody,
  decodeBody,
  describeParseError,
  forSafe,
  fromPlatform,
  isUnauthenticated400,
  Status
} from "./errors.js"
import * as Sse from "./sse.js"
import type { Raw } from "./transport.js"

const knownStatuses = new Set<string>(Domain.InboxStatus.literals)
const knownReasons = new Set<string>(Domain.PausedReason.literals)
const knownMessageStatuses = new Set<string>(Domain.MessageStatus.literals)

const inboxStatus = (s: string | null | undefined): Domain.InboxStatus => {
  const v = (s ?? "").trim().toLowerCase()
  return knownStatuses.has(v) ? (v as Domain.InboxStatus) : "unknown"
}
const pausedReason = (s: string | null | undefined): Domain.PausedReason | undefined => {
  if (s === null || s === undefined || s.trim().length === 0) return undefined
  const v = s.trim().toLowerCase()
  return knownReasons.has(v) ? (v as Domain.PausedReason) : "unknown"
}

const decodeInboxDomain = Schema.decodeUnknownEither(Domain.Inbox)

/** Maps a wire inbox onto the domain (a key over 100 characters or blank is left out, never trusted). */
const toInbox = (w: InboxWire.Inbox): Either.Either<Domain.Inbox, string> => {
  const key = w.key?.trim()
  const reason = pausedReason(w.paused_reason)
  return Either.mapLeft(
    decodeInboxDomain({
      id: w.id,
      ...(key !== undefined && key.length > 0 && key.length <= 100 ? { key } : {}),
      status: inboxStatus(w.status),
      ...(reason !== undefined ? { pausedReason: reason } : {}),
      ...(w.notification_url !== undefined ? { notificationUrl: w.notification_url } : {}),
      subscription: {
        app: w.subscription.app_key,
        action: w.subscription.action_key,
        inputs: w.subscription.inputs ?? {},
        connection: w.subscription.connection_id ?? null
      }
    }),
    (e) => `unexpected inbox: ${describeParseError(e)}`
  )
}

const decodeWireMessage = Schema.decodeUnknownEither(InboxWire.Message)

/** One message, decoded on its own: `Left` says why it was skipped (never quoting the payload). */
const toMessage = (inbox: Domain.InboxId, raw: unknown): Either.Either<Domain.InboxMessage, string> =>
  Either.flatMap(
    Either.mapLeft(decodeWireMessage(raw), (e) => describeParseError(e)),
    (m): Either.Either<Domain.InboxMessage, string> => {
      const id = m.id.trim()
      const createdAt = DateTime.make(m.created_at)
      if (id.length === 0) return Either.left("id is empty")
      if (Option.isNone(createdAt)) return Either.left(`message ${id}: created_at is not a date`)
      const status = m.status.trim().toLowerCase()
      const attributes = m.message_attributes ?? {}
      const leaseCount = attributes.lease_count
      return Either.right(
        Domain.InboxMessage.make({
          id: Domain.MessageId.make(id),
          inbox,
          createdAt: DateTime.toUtc(createdAt.value),
          status: knownMessageStatuses.has(status) ? (status as Domain.MessageStatus) : "unknown",
          leaseCount: typeof leaseCount === "number" && Number.isFinite(leaseCount) ? leaseCount : 0,
          ...(attributes.error_message ? { errorMessage: attributes.error_message.slice(0, 500) } : {}),
          possibleDuplicate: attributes.possible_duplicate_data === true,
          payload: m.payload ?? null
        })
      )
    }
  )

const decodeMessages = (inbox: Domain.InboxId, raws: ReadonlyArray<unknown>) => {
  const messages: Array<Domain.InboxMessage> = []
  const skipped: Array<string> = []
  for (const raw of raws) {
    const decoded = toMessage(inbox, raw)
    if (Either.isRight(decoded)) messages.push(decoded.right)
    else skipped.push(decoded.left)
  }
  return { messages, skipped }
}

const logSkipped = (endpoint: string, skipped: ReadonlyArray<string>) =>
  skipped.length === 0
    ? Effect.void
    : Effect.logWarning(
        "Zapier returned inbox messages this library could not read; they were skipped (not acked: they come back after the lease and end quarantined if they never read)"
      ).pipe(Effect.annotateLogs({ endpoint, skipped: skipped.length, reasons: skipped.slice(0, 3).join("; ") }))

const decodeLease = decodeBody(InboxWire.LeaseResponse)
const decodeDetail = decodeBody(InboxWire.Detail)
const decodeInbox = decodeBody(InboxWire.Inbox)
const decodeInboxList = decodeBody(InboxWire.InboxList)
const decodeMessageList = decodeBody(InboxWire.MessageList)

const inboxFrom = (raw: Raw): Either.Either<Domain.Inbox, BadBody> =>
  Either.flatMap(decodeInbox(raw.status, raw.body), (w) =>
    Either.mapLeft(toInbox(w), (reason) => new BadBody({ status: raw.status, reason, transient: false }))
  )

type EnsureAnswer =
  | { readonly _tag: "Conflict"; readonly detail: string | undefined }
  | { readonly _tag: "Inbox"; readonly inbox: Domain.Inbox }

type LeaseAnswer =
  | { readonly _tag: "Refused" }
  | { readonly _tag: "Lease"; readonly lease: typeof InboxWire.LeaseResponse.Type }

/** Any 2xx body (or none) is a success: ack, release and delete answers carry nothing this library needs. */
const anyBody = (_raw: Raw): Either.Either<void, BadBody> => Either.right(undefined)

/** Options of the live service beyond the shared settings. @since 0.1.0 */
export interface EventsOptions {
  /** Lines of the event stream longer than this are skipped with their frame; default 64 KiB. */
  readonly maxLine?: number | undefined
}

/**
 * The live `TriggerInboxes` of one layer.
 * @since 0.1.0
 * @category constructors
 */
export const make = (api: Api, tokens: TokenExchange.Service, options?: EventsOptions): TriggerInboxes.Service => {
  const { settings } = api.env
  const base = `${settings.apiUrl}${settings.triggerInboxPath}`
  const inboxUrl = (id: Domain.InboxId) => `${base}/inboxes/${encodeURIComponent(id)}`
  const maxLine = options?.maxLine ?? 64 * 1024
  const json = (request: HttpClientRequest.HttpClientRequest, body: unknown) =>
    HttpClientRequest.bodyJson(request, body).pipe(Effect.mapError((e) => fromPlatform(e, settings.requestTimeout)))

  const ensure = Effect.fn("TriggerInboxes.ensure")(function* (
    user: Domain.EndUser,
    request: TriggerInboxes.EnsureInbox
  ) {
    const sub = request.subscription
    yield* Effect.annotateCurrentSpan({ "zapier.inbox_key": request.key, "zapier.trigger": sub.action })
    const body = {
      key: request.key,
      ...(request.notificationUrl !== undefined ? { notification_url: request.notificationUrl } : {}),
      subscription: {
        app_key: sub.app,
        action_key: sub.action,
        inputs: sub.inputs,
        connection_id: sub.connection
      }
    }
    const answer = yield* api.execute(user, {
      endpoint: "PUT /inboxes",
      request: json(HttpClientRequest.put(`${base}/inboxes`), body),
      unauthenticated400: true,
      answers: [409],
      decode: (raw): Either.Either<EnsureAnswer, BadBody> =>
        raw.status === 409
          ? Either.right({
              _tag: "Conflict",
              detail: Either.getOrUndefined(decodeDetail(raw.status, raw.body))?.detail
            })
          : Either.map(inboxFrom(raw), (inbox) => ({ _tag: "Inbox", inbox }))
    })
    if (answer._tag === "Conflict") {
      return yield* new Errors.InboxKeyConflict({
        key: request.key,
        ...(answer.detail !== undefined ? { detail: answer.detail.slice(0, 200) } : {})
      })
    }
    yield* Effect.annotateCurrentSpan({ "zapier.inbox": answer.inbox.id, "zapier.inbox_status": answer.inbox.status })
    return answer.inbox
  })

  const getInbox = (user: Domain.EndUser, id: Domain.InboxId) =>
    api.execute(user, {
      endpoint: "GET /inboxes/{id}",
      resource: `inbox ${id}`,
      request: Effect.succeed(HttpClientRequest.get(inboxUrl(id))),
      unauthenticated400: true,
      decode: inboxFrom
    })

  const get = Effect.fn("TriggerInboxes.get")(function* (user: Domain.EndUser, id: Domain.InboxId) {
    yield* Effect.annotateCurrentSpan("zapier.inbox", id)
    return yield* getInbox(user, id)
  })

  const list = Effect.fn("TriggerInboxes.list")(function* (user: Domain.EndUser, filter?: TriggerInboxes.ListOptions) {
    const items = yield* paginate(api, user, {
      endpoint: "GET /inboxes",
      path: `${settings.triggerInboxPath}/inboxes`,
      query: {
        ...(filter?.key !== undefined ? { key: filter.key } : {}),
        ...(filter?.status !== undefined ? { status: filter.status } : {})
      },
      decode: (raw) =>
        Either.map(decodeInboxList(raw.status, raw.body), (page) => ({
          items: page.results,
          next: "next" in page ? page.next : undefined,
          count: "count" in page ? page.count : undefined
        }))
    })
    const inboxes: Array<Domain.Inbox> = []
    for (const item of items) {
      const inbox = toInbox(item)
      if (Either.isRight(inbox)) inboxes.push(inbox.right)
    }
    if (inboxes.length < items.length) {
      yield* Effect.logWarning("Zapier listed inboxes this library could not read; they were left out").pipe(
        Effect.annotateLogs({ skipped: items.length - inboxes.length })
      )
    }
    return inboxes
  })

  const change = (
    name: string,
    method: "PATCH" | "POST",
    path: string,
    user: Domain.EndUser,
    id: Domain.InboxId,
    body: unknown
  ) =>
    api
      .execute(user, {
        endpoint: `${method} /inboxes/{id}${path}`,
        resource: `inbox ${id}`,
        request:
          method === "PATCH"
            ? json(HttpClientRequest.patch(`${inboxUrl(id)}${path}`), body)
            : json(HttpClientRequest.post(`${inboxUrl(id)}${path}`), body),
        unauthenticated400: true,
        decode: inboxFrom
      })
      .pipe(Effect.withSpan(`TriggerInboxes.${name}`, { attributes: { "zapier.inbox": id } }))

  const update = (user: Domain.EndUser, id: Domain.InboxId, patch: { readonly notificationUrl: string | null }) =>
    change("update", "PATCH", "", user, id, { notification_url: patch.notificationUrl })
  const pause = (user: Domain.EndUser, id: Domain.InboxId) => change("pause", "POST", "/pause", user, id, {})
  const resume = (user: Domain.EndUser, id: Domain.InboxId) => change("resume", "POST", "/resume", user, id, {})

  const del = Effect.fn("TriggerInboxes.delete")(function* (user: Domain.EndUser, id: Domain.InboxId) {
    yield* Effect.annotateCurrentSpan("zapier.inbox", id)
    yield* api.execute(user, {
      endpoint: "DELETE /inboxes/{id}",
      resource: `inbox ${id}`,
      request: Effect.succeed(HttpClientRequest.del(inboxUrl(id))),
      unauthenticated400: true,
      decode: anyBody
    })
  })

  /** Why a lease was refused with 409: one GET of the inbox. */
  const refusal = (user: Domain.EndUser, id: Domain.InboxId) =>
    Effect.flatMap(
      getInbox(user, id),
      (inbox): Effect.Effect<never, Errors.RequestError | Errors.InboxPaused | Errors.InboxNotActive> => {
        if (inbox.status === "paused") {
          return Effect.fail(
            new Errors.InboxPaused({
              inbox: id,
              reason: inbox.pausedReason ?? "unknown",
              app: inbox.subscription.app,
              connection: inbox.subscription.connection
            })
          )
        }
        if (inbox.status === "active" || inbox.status === "unknown") {
          return Effect.fail(
            new Errors.ZapierUnavailable({
              endpoint: "POST /inboxes/{id}/messages/lease",
              reason: "Zapier refused the lease (409) although the inbox is active; lease again later",
              status: 409
            })
          )
        }
        return Effect.fail(new Errors.InboxNotActive({ inbox: id, status: inbox.status }))
      }
    )

  const lease = Effect.fn("TriggerInboxes.lease")(function* (
    user: Domain.EndUser,
    id: Domain.InboxId,
    options?: TriggerInboxes.LeaseOptions
  ) {
    const limits = TriggerInboxes.leaseLimits
    const leaseSeconds = Math.round(
      Math.min(limits.maxSeconds, Math.max(limits.minSeconds, options?.leaseSeconds ?? limits.defaultSeconds))
    )
    const limit = Math.round(
      Math.min(limits.maxLimit, Math.max(limits.minLimit, options?.limit ?? limits.defaultLimit))
    )
    yield* Effect.annotateCurrentSpan({ "zapier.inbox": id, "zapier.lease_limit": limit })
    const endpoint = "POST /inboxes/{id}/messages/lease"
    const answer = yield* api.lease(user, {
      endpoint,
      resource: `inbox ${id}`,
      request: json(HttpClientRequest.post(`${inboxUrl(id)}/messages/lease`), {
        lease_seconds: leaseSeconds,
        lease_limit: limit
      }),
      unauthenticated400: true,
      answers: [409],
      decode: (raw): Either.Either<LeaseAnswer, BadBody> =>
        raw.status === 409
          ? Either.right({ _tag: "Refused" })
          : Either.map(decodeLease(raw.status, raw.body), (lease) => ({ _tag: "Lease", lease }))
    })
    if (answer._tag === "Refused") return yield* refusal(user, id)
    const { messages, skipped } = decodeMessages(id, answer.lease.results)
    yield* logSkipped(endpoint, skipped)
    const leaseId = answer.lease.lease_id?.trim()
    const until = answer.lease.leased_until ? DateTime.make(answer.lease.leased_until) : Option.none()
    const attributes = answer.lease.inbox_attributes
    const reason = pausedReason(attributes?.paused_reason)
    yield* Effect.annotateCurrentSpan({ "zapier.messages": messages.length })
    if (leaseId) yield* Effect.annotateCurrentSpan("zapier.lease", leaseId)
    return Domain.Lease.make({
      ...(leaseId ? { leaseId: Domain.LeaseId.make(leaseId) } : {}),
      ...(Option.isSome(until) ? { leasedUntil: DateTime.toUtc(until.value) } : {}),
      messages,
      inboxStatus: attributes?.status ? inboxStatus(attributes.status) : "active",
      ...(reason !== undefined ? { pausedReason: reason } : {})
    })
  })

  const settle = (name: "ack" | "release") =>
    Effect.fn(`TriggerInboxes.${name}`)(function* (
      user: Domain.EndUser,
      id: Domain.InboxId,
      leaseId: Domain.LeaseId,
      messageIds?: ReadonlyArray<Domain.MessageId>
    ) {
      yield* Effect.annotateCurrentSpan({
        "zapier.inbox": id,
        "zapier.lease": leaseId,
        "zapier.messages": messageIds?.length ?? -1
      })
      const ids = messageIds ?? []
      // Zapier takes 1–100 ids per call: more are sent in chunks of 100.
      const chunks: Array<ReadonlyArray<Domain.MessageId> | undefined> = []
      if (messageIds === undefined) chunks.push(undefined)
      for (let i = 0; i < ids.length; i += 100) chunks.push(ids.slice(i, i + 100))
      for (const chunk of chunks) {
        const answer = yield* api.execute(user, {
          endpoint: `POST /inboxes/{id}/messages/${name}`,
          resource: `inbox ${id}`,
          request: json(HttpClientRequest.post(`${inboxUrl(id)}/messages/${name}`), {
            lease_id: leaseId,
            ...(chunk !== undefined ? { message_ids: chunk } : {})
          }),
          unauthenticated400: true,
          answers: [409, 410],
          decode: (raw) => Either.right(raw.status === 409 || raw.status === 410 ? "expired" : "ok")
        })
        if (answer === "expired") {
          return yield* new Errors.LeaseExpired({ inbox: id, lease: leaseId, messages: chunk ?? [] })
        }
      }
    })

  const messages = Effect.fn("TriggerInboxes.messages")(function* (
    user: Domain.EndUser,
    id: Domain.InboxId,
    filter?: { readonly status?: Domain.MessageStatus | undefined }
  ) {
    yield* Effect.annotateCurrentSpan("zapier.inbox", id)
    const endpoint = "GET /inboxes/{id}/messages"
    const raws = yield* paginate(api, user, {
      endpoint,
      path: `${settings.triggerInboxPath}/inboxes/${encodeURIComponent(id)}/messages`,
      query: filter?.status !== undefined ? { status: filter.status } : {},
      resource: `inbox ${id}`,
      decode: (raw) =>
        Either.map(decodeMessageList(raw.status, raw.body), (page) => ({
          items: page.results,
          next: "next" in page ? page.next : undefined,
          count: "count" in page ? page.count : undefined
        }))
    })
    const decoded = decodeMessages(id, raws)
    yield* logSkipped(endpoint, decoded.skipped)
    return decoded.messages
  })

  const eventsEndpoint = "GET /inboxes/{id}/events"
  const scopedClient = HttpClient.withScope(api.env.client)

  /** Opens the event stream once: its response, or the mapped failure (a refused token is invalidated). */
  const open = (user: Domain.EndUser, id: Domain.InboxId) =>
    Effect.gen(function* () {
      const token = yield* tokens.accessToken(user)
      if (api.env.limiter !== undefined) {
        yield* api.env.limiter.take().pipe(
          Effect.catchTag("RateLimited", (e) =>
            Effect.fail(
              new Errors.RateLimited({
                endpoint: `${eventsEndpoint} (client-side rate limit)`,
                retryAfter: e.retryAfter
              })
            )
          )
        )
      }
      const request = HttpClientRequest.get(`${inboxUrl(id)}/events`).pipe(
        HttpClientRequest.setHeader("accept", "text/event-stream"),
        HttpClientRequest.bearerToken(token.value)
      )
      const ctx = {
        endpoint: eventsEndpoint,
        kind: "safe" as const,
        resource: `inbox ${id}`,
        rateLimitCooldown: settings.rateLimitCooldown,
        secrets: [Redacted.value(token.value)]
      }
      const response = yield* scopedClient.execute(request).pipe(
        Effect.timeout(settings.requestTimeout),
        Effect.mapError((e) => forSafe(fromPlatform(e, settings.requestTimeout), ctx))
      )
      if (response.status >= 200 && response.status < 300) return response
      const body = yield* response.text.pipe(
        Effect.timeout(settings.requestTimeout),
        Effect.orElseSucceed(() => "")
      )
      const status = new Status({ status: response.status, headers: response.headers, body: body.slice(0, 64 * 1024) })
      if (status.status === 401 || isUnauthenticated400(status)) {
        // The next connection gets a fresh token.
        yield* tokens.invalidate(user, token)
      }
      if (status.status === 429 && api.env.limiter !== undefined) yield* api.env.limiter.pause(undefined)
      return yield* Effect.fail(forSafe(status, ctx))
    })

  const events = (
    user: Domain.EndUser,
    id: Domain.InboxId
  ): Stream.Stream<TriggerInboxes.InboxEvent, Errors.RequestError> =>
    Stream.unwrapScoped(
      Effect.map(open(user, id), (response) => {
        const reader = Sse.makeReader()
        return response.stream.pipe(
          Stream.decodeText(),
          Stream.mapConcat((chunk) => Sse.feed(reader, chunk, maxLine)),
          Stream.map(
            (frame): TriggerInboxes.InboxEvent =>
              frame === "data" ? { _tag: "MessagesAvailable" } : { _tag: "KeepAlive" }
          ),
          Stream.mapError(
            () =>
              new Errors.ZapierUnavailable({
                endpoint: eventsEndpoint,
                reason: "the event stream broke; open it again"
              })
          ),
          Stream.ensuring(
            Effect.suspend(() =>
              reader.skipped > 0
                ? Effect.logWarning("Skipped malformed or oversized event-stream frames").pipe(
                    Effect.annotateLogs({ endpoint: eventsEndpoint, skipped: reader.skipped })
                  )
                : Effect.void
            )
          )
        )
      })
    ).pipe(Stream.withSpan("TriggerInboxes.events", { attributes: { "zapier.inbox": id } }))

  return TriggerInboxes.TriggerInboxes.of({
    ensure,
    get,
    list,
    update,
    delete: del,
    pause,
    resume,
    lease,
    ack: settle("ack"),
    release: settle("release"),
    messages,
    events
  })
}
