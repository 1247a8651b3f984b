/**
 * Run callbacks: Zapier POSTs a finished run to a URL given at its creation, so `await` need not poll for it.
 *
 * With this service in the program's context, `EmbeddedActions.start` mints a per-run routing token, sends
 * `callback_url` = the partner's public callback URL with the token as a query parameter, and records the token
 * on the {@link RunEvents} bus (`expect`). The partner mounts a receiver at that URL (`RunCallback.handler` of
 * `@effect-zapier/http`), which verifies Zapier's signature, checks the token against the bus and publishes the
 * run's end; `EmbeddedActions.await` completes from the bus, on whichever replica awaits.
 *
 * Callbacks are best effort, so polling stays as a safety net, on a stretched schedule ({@link safetyNetDefaults}:
 * first poll after 15 s, then ×2 up to 60 s). How a callback and a poll are reconciled:
 * - the first terminal state seen ends the await, whether from the bus or from a poll;
 * - a callback never overrides a poll that was **sent after** the callback was received and still said pending:
 *   the callback is then discarded (logged) and polling goes on, so a callback is never needed for a correct
 *   result and never trusted over a later look at the run itself;
 * - a duplicate callback (Zapier may deliver more than once) is answered and ignored: the bus keeps the first.
 *
 * Without this service (no callback URL configured) runs are polled on the plain schedule: never a failure. If
 * Zapier refuses the callback URL (a 400 about `callback_url`: it is not HTTPS, not public, or too long), the run
 * is created again without it (Zapier processed nothing), a warning is logged once, and later runs are created
 * without it: a callback is never needed for a run.
 *
 * @example
 * ```ts
 * import { EmbeddedActions, RunCallbacks, RunEvents } from "@effect-zapier/core"
 * import { Layer } from "effect"
 *
 * const Callbacks = RunCallbacks.layer({ url: "https://partner.example/zapier/runs" }).pipe(
 *   Layer.provideMerge(RunEvents.layerMemory())
 * )
 * const program = EmbeddedActions.layer.pipe(Layer.provide(Callbacks))
 * ```
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Polling from "./Polling.js"
import * as RunEvents from "./RunEvents.js"

/**
 * The callback of one run: the URL to send Zapier (it carries the token, so it is `Redacted` too) and its token.
 * @since 0.1.0
 * @category models
 */
export interface CallbackTarget {
  readonly url: Redacted.Redacted<string>
  readonly token: Redacted.Redacted<string>
}

/**
 * The polling schedule while a callback is expected (the rest of the policy, deadline included, is the plain one).
 * @since 0.1.0
 * @category models
 */
export type SafetyNet = Pick<Polling.PolicyShape, "initialDelay" | "factor" | "maxDelay" | "jitter">

/**
 * First poll after 15 s, then ×2 per poll up to 60 s, ±20 % jitter: a dropped callback still ends the await within
 * about a minute of the run's end, for about one poll per minute of run.
 * @since 0.1.0
 */
export const safetyNetDefaults: SafetyNet = {
  initialDelay: Duration.seconds(15),
  factor: 2,
  maxDelay: Duration.seconds(60),
  jitter: 0.2
}

/**
 * The query parameter that carries the routing token in the callback URL, by default.
 * @since 0.1.0
 */
export const defaultTokenParameter = "zapier_run_token"

/** @since 0.1.0 */
export interface Service {
  /** The callback of one new run, with a fresh token (or the given one). */
  readonly target: (token?: Redacted.Redacted<string>) => Effect.Effect<CallbackTarget>
  /** The query parameter the token travels in. */
  readonly tokenParameter: string
  /** The bus the receiver publishes to and `await` listens on. */
  readonly events: RunEvents.Service
  /** The polling schedule while a callback is expected. */
  readonly safetyNet: SafetyNet
}

/**
 * @since 0.1.0
 * @category tags
 */
export class RunCallbacks extends Context.Tag("@effect-zapier/core/RunCallbacks")<RunCallbacks, Service>() {}

/**
 * Options of {@link make}.
 * @since 0.1.0
 * @category options
 */
export interface Options {
  /**
   * The partner's public callback URL (checked by the layer that reads it from configuration: HTTPS, a public
   * host, at most 2048 characters with the token). It may have a query of its own; the token is appended.
   */
  readonly url: string
  /** The query parameter of the token; default {@link defaultTokenParameter}. */
  readonly tokenParameter?: string | undefined
  /** The polling schedule while a callback is expected; default {@link safetyNetDefaults}. */
  readonly safetyNet?: Partial<SafetyNet> | undefined
}

/**
 * The callback URL for one token.
 * @since 0.1.0
 */
export const urlFor = (url: string, tokenParameter: string, token: Redacted.Redacted<string>): string => {
  const at = url.indexOf("#")
  const base = at === -1 ? url : url.slice(0, at)
  const separator = base.includes("?") ? (base.endsWith("?") || base.endsWith("&") ? "" : "&") : "?"
  return `${base}${separator}${encodeURIComponent(tokenParameter)}=${encodeURIComponent(Redacted.value(token))}`
}

/**
 * The service over a bus.
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options, events: RunEvents.Service): Service => {
  const tokenParameter = options.tokenParameter ?? defaultTokenParameter
  return RunCallbacks.of({
    target: (token) =>
      Effect.map(token !== undefined ? Effect.succeed(token) : RunEvents.mintToken, (t) => ({
        url: Redacted.make(urlFor(options.url, tokenParameter, t)),
        token: t
      })),
    tokenParameter,
    events,
    safetyNet: { ...safetyNetDefaults, ...options.safetyNet }
  })
}

/**
 * The service as a layer over the {@link RunEvents.RunEvents} bus in context.
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<RunCallbacks, never, RunEvents.RunEvents> =>
  Layer.effect(
    RunCallbacks,
    Effect.map(RunEvents.RunEvents, (events) => make(options, events))
  )
