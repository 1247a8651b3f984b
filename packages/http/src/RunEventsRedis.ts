/**
 * The run-event bus over Redis, for a fleet: the replica that receives a run callback publishes the run's end,
 * and the replica awaiting that run completes, whichever it is. Needs the optional peer dependency `ioredis` ^5
 * (loaded only when this layer is built).
 *
 * In Redis, under `prefix` (default `effect-zapier:runs:`):
 * - `expect:<run id>`: the SHA-256 of the run's routing token (never the token), with the retention as TTL;
 * - `event:<run id>`: the run's end, written once (`SET NX`, the retention as TTL): the first publish wins, a
 *   duplicate changes nothing;
 * - channel `events`: the run id of each new end, so every process wakes its own waiters for that run, which then
 *   read `event:<run id>`. An await registers its waiter before it reads the key, so an end published between
 *   the two is not missed; when the subscription comes back after a lost connection, every waiter reads its key
 *   again, so an end published meanwhile is not missed either.
 *
 * A failing Redis makes the operations fail with `RunEventsUnavailable` (within `timeout`): an await then polls
 * on the plain schedule and the callback receiver answers 503 so that Zapier delivers again.
 *
 * @example
 * ```ts
 * import { RunEventsRedis, ZapierHttp } from "@effect-zapier/http"
 * import { Layer, Redacted } from "effect"
 *
 * const options: ZapierHttp.Options = {
 *   clientId: "partner-client",
 *   clientSecret: Redacted.make(process.env.ZAPIER_CLIENT_SECRET ?? ""),
 *   signingKey: Redacted.make(process.env.ZAPIER_SIGNING_KEY ?? ""),
 *   keyId: "key-2026-03",
 *   issuer: "https://partner.example"
 * }
 *
 * const ZapierLive = ZapierHttp.layer({ ...options, runCallbackUrl: "https://partner.example/zapier/runs" }).pipe(
 *   Layer.provide(RunEventsRedis.layer({ redis: { url: Redacted.make(process.env.REDIS_URL ?? "redis://127.0.0.1:6379") } }))
 * )
 * ```
 * @since 0.1.0
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { ActionRunId } from "@effect-zapier/core/Domain"
import { RunEventsUnavailable } from "@effect-zapier/core/Errors"
import * as RunEvents from "@effect-zapier/core/RunEvents"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { RedisOptions as IORedisOptions, Redis } from "ioredis"

/**
 * Options of the Redis bus.
 * @since 0.1.0
 * @category options
 */
export interface Options {
  /**
   * Either a URL (`redis://user:password@host:6379/0`; keep it `Redacted` when it holds a password) and optional
   * ioredis options (clients are created and closed with the layer), or a client of your own (left open; a
   * duplicate of it subscribes, closed with the layer).
   */
  readonly redis:
    | { readonly url: string | Redacted.Redacted<string>; readonly options?: IORedisOptions | undefined }
    | { readonly client: Redis }
  /** Prefix of the keys and the channel; every process of a fleet must use the same; default `effect-zapier:runs:`. */
  readonly prefix?: string | undefined
  /** How long expectations and ends are kept; default 1 hour. */
  readonly retention?: Duration.DurationInput | undefined
  /** The longest one Redis round trip may take; default 1 second. */
  readonly timeout?: Duration.DurationInput | undefined
}

const digest = (token: Redacted.Redacted<string>): Buffer =>
  createHash("sha256").update(Redacted.value(token), "utf8").digest()

const describe = (cause: unknown): string => (cause instanceof Error ? cause.message.slice(0, 200) : "unknown error")

const EventJson = Schema.parseJson(RunEvents.RunEvent)
const encodeEvent = Schema.encode(EventJson)
const decodeEvent = Schema.decodeUnknownEither(EventJson)

/** A client of the layer's own, closed with its scope. */
const open = (url: string, options: IORedisOptions): Effect.Effect<Redis, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { Redis } = yield* Effect.tryPromise(() => import("ioredis")).pipe(
      Effect.orDieWith(
        () => new Error("RunEventsRedis.layer needs the package ioredis ^5: add it to your dependencies.")
      )
    )
    return yield* acquire(() => new Redis(url, options))
  })

const acquire = (create: () => Redis): Effect.Effect<Redis, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const client = create()
      // Errors surface as failed commands; without a listener ioredis prints them.
      client.on("error", () => {})
      return client
    }),
    (client) => Effect.sync(() => client.disconnect())
  )

/**
 * The bus over Redis (see the module's description).
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<RunEvents.Service, never, Scope.Scope> =>
  Effect.gen(function* () {
    const prefix = options.prefix ?? "effect-zapier:runs:"
    const retentionSeconds = Math.max(1, Math.ceil(Duration.toSeconds(Duration.decode(options.retention ?? "1 hour"))))
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(1))
    const channel = `${prefix}events`
    const commandOptions: IORedisOptions = { enableOfflineQueue: false, maxRetriesPerRequest: 1 }
    let client: Redis
    let subscriber: Redis
    if ("client" in options.redis) {
      const own = options.redis.client
      client = own
      subscriber = yield* acquire(() => own.duplicate({ enableOfflineQueue: true }))
    } else {
      const url = Redacted.isRedacted(options.redis.url) ? Redacted.value(options.redis.url) : options.redis.url
      client = yield* open(url, { ...commandOptions, ...options.redis.options })
      subscriber = yield* open(url, { ...options.redis.options, enableOfflineQueue: true })
    }

    const run = <A>(operation: string, command: () => Promise<A>) =>
      Effect.tryPromise({
        try: command,
        catch: (cause) => new RunEventsUnavailable({ operation, reason: describe(cause) })
      }).pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () =>
            new RunEventsUnavailable({ operation, reason: `Redis did not answer within ${Duration.format(timeout)}` })
        })
      )

    const waiters = new Map<string, Set<Deferred.Deferred<RunEvents.RunEvent, RunEventsUnavailable>>>()
    const runtime = yield* Effect.runtime<never>()

    const lookup = (runId: ActionRunId) =>
      Effect.flatMap(
        run("lookup", () => client.get(`${prefix}event:${runId}`)),
        (raw): Effect.Effect<Option.Option<RunEvents.RunEvent>, RunEventsUnavailable> => {
          if (raw === null) return Effect.succeed(Option.none())
          const decoded = decodeEvent(raw)
          return Either.isRight(decoded)
            ? Effect.succeed(Option.some(decoded.right))
            : Effect.fail(
                new RunEventsUnavailable({ operation: "lookup", reason: "a stored run event does not decode" })
              )
        }
      )

    const wake = (runId: ActionRunId) => {
      const set = waiters.get(runId)
      if (set === undefined || set.size === 0) return Effect.void
      return Effect.flatMap(Effect.either(lookup(runId)), (found) =>
        Effect.forEach(
          [...set],
          (d) =>
            Either.isLeft(found)
              ? Deferred.fail(d, found.left)
              : Option.isSome(found.right)
                ? Deferred.succeed(d, found.right.value)
                : Effect.void,
          { discard: true }
        )
      )
    }

    const onMessage = (from: string, message: string) => {
      if (from !== channel) return
      const runId = Schema.decodeUnknownEither(ActionRunId)(message)
      if (Either.isRight(runId)) Runtime.runFork(runtime)(wake(runId.right))
    }
    // A message published while the subscriber was reconnecting is lost: once it is back, every waiter reads its
    // run's key again.
    let connectedOnce = false
    const onReady = () => {
      if (!connectedOnce) {
        connectedOnce = true
        return
      }
      const runs = [...waiters.keys()]
      if (runs.length > 0) Runtime.runFork(runtime)(Effect.forEach(runs, (runId) => wake(ActionRunId.make(runId))))
    }
    subscriber.on("message", onMessage)
    subscriber.on("ready", onReady)
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        subscriber.off("message", onMessage)
        subscriber.off("ready", onReady)
      })
    )
    yield* run("subscribe", () => subscriber.subscribe(channel)).pipe(
      Effect.timeout(Duration.sum(timeout, Duration.seconds(1))),
      Effect.catchAll(() =>
        Effect.logWarning("The Redis run-event bus could not subscribe yet; awaits poll until it does")
      )
    )

    const expect = (runId: ActionRunId, token: Redacted.Redacted<string>) =>
      Effect.asVoid(
        run("expect", () =>
          client.set(`${prefix}expect:${runId}`, digest(token).toString("hex"), "EX", retentionSeconds)
        )
      )

    const check = (runId: ActionRunId, token: Redacted.Redacted<string>) =>
      Effect.map(
        run("check", () => client.get(`${prefix}expect:${runId}`)),
        (stored): RunEvents.TokenCheck => {
          if (stored === null) return "unknown"
          const expected = Buffer.from(stored, "hex")
          const given = digest(token)
          return expected.length === given.length && timingSafeEqual(expected, given) ? "match" : "mismatch"
        }
      )

    const publish = (event: RunEvents.RunEvent) =>
      Effect.gen(function* () {
        const value = yield* encodeEvent(event).pipe(
          Effect.mapError(() => new RunEventsUnavailable({ operation: "publish", reason: "the event does not encode" }))
        )
        const set = yield* run("publish", () =>
          client.set(`${prefix}event:${event.runId}`, value, "EX", retentionSeconds, "NX")
        )
        if (set !== "OK") return false
        yield* run("publish", () => client.publish(channel, event.runId))
        return true
      })

    const awaitEvent = (runId: ActionRunId) =>
      Effect.gen(function* () {
        const deferred = yield* Deferred.make<RunEvents.RunEvent, RunEventsUnavailable>()
        const set = waiters.get(runId) ?? new Set()
        set.add(deferred)
        waiters.set(runId, set)
        const release = Effect.sync(() => {
          set.delete(deferred)
          if (set.size === 0 && waiters.get(runId) === set) waiters.delete(runId)
        })
        return yield* Effect.gen(function* () {
          // Registered first, then read: an end published in between reaches the waiter through the channel.
          const found = yield* lookup(runId)
          if (Option.isSome(found)) return found.value
          return yield* Deferred.await(deferred)
        }).pipe(Effect.ensuring(release))
      })

    return RunEvents.RunEvents.of({ expect, check, publish, lookup, await: awaitEvent })
  })

/**
 * The Redis bus as a layer (see {@link make}); provide it to `ZapierHttp.layer` to share callbacks across a fleet.
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<RunEvents.RunEvents> =>
  Layer.scoped(RunEvents.RunEvents, make(options))
