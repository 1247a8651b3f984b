/**
 * An in-memory Zapier: one model of a partner, its provisioned end users, apps with actions, connections, action
 * runs with scripted lifecycles, connect tokens, access tokens, rate limits, a fault plan, and a ledger of
 * everything that happened. `FakeZapier.layer(seed)` serves core's four services straight from the model (no HTTP),
 * plus the {@link FakeZapier} control tag to script and inspect it. `FakeZapierServer` serves the same model over
 * real HTTP.
 *
 * Time is Effect's `Clock` (the one in scope when the layer is built), so under `TestClock` a run created at `t`
 * that is scripted to take 2 s finishes at `t + 2 s`, and polling a 60 s run completes instantly.
 *
 * @example
 * ```ts
 * import { ConnectionStore, Domain, EmbeddedActions } from "@effect-zapier/core"
 * import { FakeZapier } from "@effect-zapier/testing"
 * import { Effect, Layer } from "effect"
 *
 * const user = Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
 * const program = Effect.gen(function* () {
 *   const zapier = yield* FakeZapier.FakeZapier
 *   yield* zapier.addConnection(user, FakeZapier.sample.slack)
 *   const actions = yield* EmbeddedActions.EmbeddedActions
 *   return yield* actions.run({ user, app: FakeZapier.sample.slack, action: FakeZapier.sample.sendChannelMessage, inputs: { channel: "#general", text: "Hi" } })
 * })
 * const live = EmbeddedActions.layer.pipe(
 *   Layer.provideMerge(FakeZapier.layer(FakeZapier.sampleSeed)),
 *   Layer.provide(ConnectionStore.layerMemory)
 * )
 * program.pipe(Effect.provide(live))
 * ```
 *
 * @since 0.1.0
 */
import type {
  ActionCatalog,
  ActionRuns,
  Apps,
  Connections,
  TokenExchange,
  TriggerInboxes,
  Triggers
} from "@effect-zapier/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { Control } from "./internal/areas.js"
import * as Areas from "./internal/areas.js"
import type { Seed } from "./internal/seed.js"

// The public types live in the modules of their area (seed, faults, ledger, runs, Connect UI); this module
// re-exports them, so `FakeZapier.Seed`, `FakeZapier.Fault`, … are what users see.

/** @since 0.1.0 */
export { callbackKeyId } from "./internal/areas/callbacks.js"
/** @since 0.1.0 */
export type {
  ConnectCallbackPayload,
  ConnectOptions,
  DenyOptions,
  RedirectParameters
} from "./internal/areas/connect.js"
/** @since 0.1.0 */
export type { RunInfo } from "./internal/areas/runs.js"
/** @since 0.1.0 */
export type { InboxInfo, MessageInfo, NotificationEntry } from "./internal/areas/triggerInbox.js"
/** @since 0.1.0 */
export { type Control, Endpoint } from "./internal/areas.js"
/** @since 0.1.0 */
export { Fault, type FaultRule } from "./internal/fault.js"
/** @since 0.1.0 */
export {
  type CallbackEntry,
  type ConnectEntry,
  callbacksOf,
  type ExchangeEntry,
  exchangesOf,
  type Ledger,
  type LookupEntry,
  lookupsOf,
  type PollEntry,
  pollsOf,
  type RequestEntry,
  type RunEntry,
  type RunStatus,
  requestsByEndpoint,
  runsOf
} from "./internal/ledger.js"
/** @since 0.1.0 */
export type { InboxCounts } from "./internal/model/inbox.js"
/** @since 0.1.0 */
export { sample, sampleChannels, sampleSeed } from "./internal/sample.js"
/** @since 0.1.0 */
export type {
  ActionSeed,
  AppSeed,
  CallbackPlan,
  CallbackSeed,
  ChoiceSeed,
  ChoicesSeed,
  ConnectionSeed,
  FieldSeed,
  FieldsetSeed,
  FieldsSeed,
  InfoFieldSeed,
  InputFieldSeed,
  OutputFieldSeed,
  PartnerKeySeed,
  PartnerSeed,
  ResultsSeed,
  RunErrorSeed,
  Seed,
  UserSeed
} from "./internal/seed.js"
/** @since 0.1.0 */
export { RunScript } from "./internal/seed.js"

/**
 * The control tag of the model.
 * @since 0.1.0
 * @category tags
 */
export class FakeZapier extends Context.Tag("@effect-zapier/testing/FakeZapier")<FakeZapier, Control>() {}

/**
 * Core's services served from a fresh model (`TokenExchange`, `Connections`, `ActionCatalog`, `ActionRuns`,
 * `Apps`), and the {@link FakeZapier} control tag. The model's clock is the
 * `Clock` in scope when the layer is built (`TestClock` inside `it.effect`).
 *
 * Behaviour, as core's contracts describe it:
 * - `TokenExchange` caches one access token per user (refreshed when less than min(300 s, half its life) is left,
 *   or after a 401); every exchange is in the ledger. Connect tokens are single use and last 6 minutes.
 * - `Connections.list` returns the user's own connections to the app, in creation order; `connectLink` builds
 *   `{connectUrl}/to/{app}?token=…&state=…&reconnect_id=…&redirect_uri=…&theme=…`.
 * - `ActionCatalog.resolve` looks the action up on every call and returns a new id every time (`ActionNotFound`
 *   for an unknown key/type; `NotFound` for an unknown app). `inputFields`, `choices` and `outputFields` take an
 *   action id issued to this user and a connection of this user to the action's app (`BadRequest` otherwise),
 *   and compute the fields from the inputs as the seed says.
 * - `Apps` lists the catalog (filtered by `query`, `category`, `ids`) a page at a time.
 * - `ActionRuns.create` accepts only an action id issued to this user by a lookup, and a connection of this user
 *   to the action's app (`BadRequest` otherwise). An expired connection is accepted, and the run fails at once
 *   with code `authentication`, as Zapier reports a connection that needs reconnecting.
 * - `ActionRuns.get` of another user's run (or an unknown id) is `NotFound`.
 * - Fault rules and the rate limit apply as they would over HTTP (a 5xx, a 408 or a drop on create is
 *   `RunOutcomeUnknown`; on a safe request they are `ZapierUnavailable`).
 *
 * @example
 * ```ts
 * const TestZapier = FakeZapier.layer(FakeZapier.sampleSeed)
 * it.effect("runs", () => program.pipe(Effect.provide(EmbeddedActions.layer.pipe(Layer.provideMerge(TestZapier), Layer.provide(ConnectionStore.layerMemory)))))
 * ```
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  seed?: Seed
): Layer.Layer<
  | TokenExchange.TokenExchange
  | Connections.Connections
  | ActionCatalog.ActionCatalog
  | ActionRuns.ActionRuns
  | Apps.Apps
  | TriggerInboxes.TriggerInboxes
  | Triggers.Triggers
  | FakeZapier
> =>
  Layer.unwrapScoped(
    Effect.map(Areas.makeModel(seed ?? {}), (model) =>
      Layer.merge(Layer.effectContext(Areas.services(model)), Layer.succeed(FakeZapier, model.control))
    )
  )
