/**
 * The run-event bus: how the end of a run, learnt on one replica (a signed callback from Zapier), reaches the
 * fiber awaiting that run on any replica.
 *
 * Three things travel on it, all keyed by the run id:
 * - the **expectation** `expect(runId, routingToken)`: written when a run is created with a callback URL. A bus
 *   with shared storage (Redis) keeps only a digest of the token, so whoever reads it cannot forge a callback URL.
 *   A callback receiver asks `check(runId, routingToken)` before it trusts a callback for that run: the token in
 *   the URL Zapier called must be the one minted for that run (`match`), not another run's (`mismatch`); a run
 *   the bus has never heard of is `unknown` (expired, or a callback that overtook the expectation's write).
 * - the **terminal event** `publish(event)`: the run's final state, kept for the bus's retention. The first
 *   publish of a run id wins and answers `true`; later ones (Zapier delivers a callback more than once) answer
 *   `false` and change nothing, so a run is delivered once.
 * - the **wait** `await(runId)`: completes with the run's event, at once when it was already published (on any
 *   replica, within the retention), else when it is. Interrupt it to stop waiting.
 *
 * `layerMemory` serves one process; `@effect-zapier/http`'s `RunEventsRedis.layer` serves a fleet through Redis
 * (keys with a TTL and pub/sub), so a callback received by replica B completes an await on replica A.
 *
 * A durable-run engine can complete its own waits from here on whichever replica it runs: the event carries the
 * run id, the terminal state, and the routing token from the callback URL (the token `EmbeddedActions.start`
 * minted, or the one the caller chose with `RunRequest.callbackToken`), so a token that names the engine's own
 * wait (a deferred's token) routes the event without a lookup.
 *
 * @example
 * ```ts
 * import { Domain, RunEvents } from "@effect-zapier/core"
 * import { DateTime, Effect, Fiber } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const bus = yield* RunEvents.RunEvents
 *   const runId = Domain.ActionRunId.make("run-1")
 *   const waiting = yield* Effect.fork(bus.await(runId))
 *   yield* bus.publish(
 *     RunEvents.RunEvent.make({
 *       runId,
 *       state: Domain.RunSucceeded.make({ runId, results: [] }),
 *       source: "callback",
 *       receivedAt: yield* DateTime.now
 *     })
 *   )
 *   return yield* Fiber.join(waiting) // the event
 * }).pipe(Effect.provide(RunEvents.layerMemory()))
 * ```
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { ActionRunId, RunFailed, RunSucceeded } from "./Domain.js"
import type { RunEventsUnavailable } from "./Errors.js"

/**
 * A run's final state: `RunSucceeded` or `RunFailed` (a pending state is never an event).
 * @since 0.1.0
 * @category models
 */
export const TerminalState = Schema.Union(RunSucceeded, RunFailed)
/**
 * @since 0.1.0
 * @category models
 */
export type TerminalState = typeof TerminalState.Type

/**
 * The end of one run, as the bus carries it.
 *
 * - `runId`, `state`: the run and its final state.
 * - `routingToken`: the per-run token carried by the callback URL Zapier called (`Redacted`: it never prints). It
 *   is encoded as a plain string on the bus (Redis), so keep the bus private. Absent for events not learnt from a
 *   callback.
 * - `source`: `callback` (verified signed callback) or `poll` (a replica's poll saw the end first).
 * - `receivedAt`: when the replica that published it learnt the end.
 *
 * @since 0.1.0
 * @category models
 */
export class RunEvent extends Schema.Class<RunEvent>("@effect-zapier/core/RunEvent")({
  runId: ActionRunId,
  state: TerminalState,
  routingToken: Schema.optional(Schema.Redacted(Schema.String)),
  source: Schema.Literal("callback", "poll"),
  receivedAt: Schema.DateTimeUtc
}) {}

/**
 * The answer of {@link Service.check}.
 * @since 0.1.0
 */
export type TokenCheck = "match" | "mismatch" | "unknown"

/** @since 0.1.0 */
export interface Service {
  /** Records that `runId` was created with a callback URL carrying `routingToken` (a shared bus keeps only its digest). */
  readonly expect: (
    runId: ActionRunId,
    routingToken: Redacted.Redacted<string>
  ) => Effect.Effect<void, RunEventsUnavailable>
  /** Whether `routingToken` is the one recorded for `runId` (see the module's description). */
  readonly check: (
    runId: ActionRunId,
    routingToken: Redacted.Redacted<string>
  ) => Effect.Effect<TokenCheck, RunEventsUnavailable>
  /** Publishes a run's end: `true` when it is the first for this run id, `false` for a duplicate (ignored). */
  readonly publish: (event: RunEvent) => Effect.Effect<boolean, RunEventsUnavailable>
  /** The run's event if it was published (within the retention). */
  readonly lookup: (runId: ActionRunId) => Effect.Effect<Option.Option<RunEvent>, RunEventsUnavailable>
  /** Waits for the run's event: at once when already published, else when it is. */
  readonly await: (runId: ActionRunId) => Effect.Effect<RunEvent, RunEventsUnavailable>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class RunEvents extends Context.Tag("@effect-zapier/core/RunEvents")<RunEvents, Service>() {}

/**
 * Compares two routing tokens in time independent of where they differ.
 * @since 0.1.0
 */
export const sameToken = (a: Redacted.Redacted<string>, b: Redacted.Redacted<string>): boolean => {
  const x = Redacted.value(a)
  const y = Redacted.value(b)
  let diff = x.length ^ y.length
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x.charCodeAt(i) | 0) ^ (y.charCodeAt(i) | 0)
  return diff === 0
}

/**
 * A fresh routing token: 32 random bytes, base64url (256 bits, unguessable).
 * @since 0.1.0
 */
export const mintToken: Effect.Effect<Redacted.Redacted<string>> = Effect.sync(() => {
  const bytes = new Uint8Array(32)
  globalThis.crypto.getRandomValues(bytes)
  let binary = ""
  for (const b of bytes) binary += String.fromCharCode(b)
  return Redacted.make(globalThis.btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""))
})

/**
 * Options of the in-memory bus.
 * @since 0.1.0
 * @category options
 */
export interface MemoryOptions {
  /** How long expectations and events are kept; default 1 hour. */
  readonly retention?: Duration.DurationInput | undefined
  /** The most runs remembered (expectations and events each); the oldest are forgotten first; default 10,000. */
  readonly capacity?: number | undefined
}

/**
 * The in-memory bus: one process, bounded in time and size.
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (options?: MemoryOptions): Effect.Effect<Service> =>
  Effect.sync(() => {
    const retention = Duration.toMillis(Duration.decode(options?.retention ?? Duration.hours(1)))
    const capacity = Math.max(1, options?.capacity ?? 10_000)
    // Insertion-ordered maps: the first key is the oldest entry.
    const expected = new Map<string, { readonly token: Redacted.Redacted<string>; readonly until: number }>()
    const events = new Map<string, { readonly event: RunEvent; readonly until: number }>()
    const waiters = new Map<string, Set<Deferred.Deferred<RunEvent>>>()

    const prune = <V extends { readonly until: number }>(map: Map<string, V>, now: number) => {
      for (const [key, value] of map) {
        if (value.until > now && map.size <= capacity) break
        map.delete(key)
      }
    }
    const live = <V extends { readonly until: number }>(map: Map<string, V>, key: string, now: number) => {
      const value = map.get(key)
      return value !== undefined && value.until > now ? value : undefined
    }

    const expect = (runId: ActionRunId, token: Redacted.Redacted<string>) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.sync(() => {
          expected.delete(runId)
          expected.set(runId, { token, until: now + retention })
          prune(expected, now)
        })
      )

    const check = (runId: ActionRunId, token: Redacted.Redacted<string>) =>
      Effect.map(Clock.currentTimeMillis, (now): TokenCheck => {
        const entry = live(expected, runId, now)
        return entry === undefined ? "unknown" : sameToken(entry.token, token) ? "match" : "mismatch"
      })

    const publish = (event: RunEvent) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        if (live(events, event.runId, now) !== undefined) return Effect.succeed(false)
        events.delete(event.runId)
        events.set(event.runId, { event, until: now + retention })
        prune(events, now)
        const waiting = waiters.get(event.runId)
        waiters.delete(event.runId)
        return Effect.as(
          Effect.forEach(waiting ?? [], (d) => Deferred.succeed(d, event), { discard: true }),
          true
        )
      })

    const lookup = (runId: ActionRunId) =>
      Effect.map(Clock.currentTimeMillis, (now) =>
        Option.map(Option.fromNullable(live(events, runId, now)), (e) => e.event)
      )

    const awaitEvent = (runId: ActionRunId) =>
      Effect.flatMap(lookup(runId), (found) => {
        if (Option.isSome(found)) return Effect.succeed(found.value)
        return Effect.flatMap(Deferred.make<RunEvent>(), (deferred) => {
          const set = waiters.get(runId) ?? new Set()
          set.add(deferred)
          waiters.set(runId, set)
          return Deferred.await(deferred).pipe(
            Effect.ensuring(
              Effect.sync(() => {
                set.delete(deferred)
                if (set.size === 0 && waiters.get(runId) === set) waiters.delete(runId)
              })
            )
          )
        })
      })

    return RunEvents.of({ expect, check, publish, lookup, await: awaitEvent })
  })

/**
 * The in-memory bus as a layer (fresh state per build).
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options?: MemoryOptions): Layer.Layer<RunEvents> =>
  Layer.effect(RunEvents, makeMemory(options))
