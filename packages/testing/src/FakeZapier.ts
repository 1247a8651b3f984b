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
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { Control } from "./internal/areas.js"
import * as Areas from "./internal/areas.js"
import type { Seed } from "./internal/seed.js"
import type { InvalidSeed } from "./internal/seedSchema.js"

// The public types live in the modules of their area (seed, faults, ledger, runs, Connect UI); this module
// re-exports them, so `FakeZapier.Seed`, `FakeZapier.Fault`, … are what users see.

export {
  /**
   * The `kid` of the fake's callback signing key.
   * @since 0.1.0
   */
  callbackKeyId
} from "./internal/areas/callbacks.js"
export type {
  /**
   * What the end user's browser is left with when Connect UI finishes (`approveConnectInBrowser` /
   * `denyConnectInBrowser`): the callback, and the URL the browser is sent to in redirect mode (the partner's
   * `redirect_uri` with the callback query), for a test that follows it over HTTP.
   * @since 0.2.0
   * @category connect
   */
  BrowserOutcome,
  /**
   * What a real browser delivers to the partner when Connect UI finishes: the redirect's query, or the popup's
   * `postMessage` data. Feed it to `EmbeddedActions.completeConnection`.
   * @since 0.1.0
   * @category connect
   */
  ConnectCallbackPayload,
  /**
   * How `approveConnect` / `denyConnect` deliver the outcome: the redirect query (default) or the popup message.
   * @since 0.1.0
   * @category connect
   */
  ConnectOptions,
  /**
   * Options of `denyConnect` (default: `server_error`, `OAuth Failed: access_denied`, as when the user refuses
   * the third-party consent screen).
   * @since 0.1.0
   * @category connect
   */
  DenyOptions,
  /**
   * The parameters of the `redirect_uri` itself (the partner's own, and the library's `connect_attempt`), which a
   * browser sent back to it still carries next to Connect UI's.
   * @since 0.1.0
   * @category connect
   */
  RedirectParameters
} from "./internal/areas/connect.js"
export type {
  /**
   * A connection-webhook delivery the fake made (`scheduleConnectionExpiry`).
   * @since 0.2.0
   * @category control
   */
  ConnectionWebhookDelivery,
  /**
   * A connection-webhook subscription as the fake holds it, with its signing secret.
   * @since 0.2.0
   * @category control
   */
  ConnectionWebhookInfo
} from "./internal/areas/connectionWebhooks.js"
export type {
  /**
   * A gate of `holdRuns`: the runs of its action created while it is closed read as pending (`waiting`) until it is
   * released, whatever their script says, so a test can see a run waiting on any machine speed. `awaitRead` waits for
   * a read of a held run (the client has seen it pending); `release` lets the held runs end as scripted.
   *
   * @example
   * ```ts
   * import { FakeZapier } from "@effect-zapier/testing"
   * import { Effect } from "effect"
   *
   * const holdUntilSeenWaiting = Effect.gen(function* () {
   *   const zapier = yield* FakeZapier.FakeZapier
   *   const gate = yield* zapier.holdRuns(FakeZapier.sample.slack, FakeZapier.sample.sendChannelMessage)
   *   // ... start the run under test here (a forked fiber, a request to the app under test) ...
   *   const runId = yield* gate.awaitRead // a read of the held run answered `waiting`
   *   yield* gate.release // it now ends as scripted: at once, or at its scripted end if that is later
   *   return runId
   * })
   * ```
   * @since 0.3.0
   * @category control
   */
  RunGate,
  /**
   * A run as the model holds it.
   * @since 0.1.0
   * @category control
   */
  RunInfo
} from "./internal/areas/runs.js"
export type {
  /**
   * An inbox as the model holds it.
   * @since 0.1.0
   * @category control
   */
  InboxInfo,
  /**
   * A message as the model holds it (any inbox's).
   * @since 0.1.0
   * @category control
   */
  MessageInfo,
  /**
   * A notification the server posted to an inbox's `notification_url`.
   * @since 0.1.0
   * @category control
   */
  NotificationEntry
} from "./internal/areas/triggerInbox.js"
export {
  /**
   * The control side of the model: script it, act as the end user in Connect UI, and read the ledger.
   * Misuse (an unknown app, user or connection) fails with core's `NotFound`, naming the control method.
   * @since 0.1.0
   * @category control
   */
  type Control,
  /**
   * The names of the endpoints, as the ledger and fault rules use them (method and route template).
   * @since 0.1.0
   * @category ledger
   */
  Endpoint
} from "./internal/areas.js"
export {
  /**
   * A fault injected into one request.
   * - `Status`: answer with this HTTP status and a Zapier error (`errors[]`; OAuth `{error}` on the token endpoint),
   *   with `Retry-After` when `retryAfter` is set (in delta seconds, or as an HTTP-date with
   *   `retryAfterFormat: "http-date"`). With `afterCommit` the request is processed first (a run is created) and
   *   only the answer is replaced: the ambiguous case.
   * - `Delay`: answer normally, after `duration` (on the model's clock).
   * - `Disconnect`: the connection is dropped without an answer (after processing when `afterCommit`).
   * - `MalformedBody`: the request is processed, then answered `200` with a body that is not JSON.
   * - `Respond`: the answer is replaced by exactly this status, content type, headers and body (an HTML page, an
   *   empty 200, a run with a status Zapier never documented, …); processed first unless `afterCommit: false`.
   *   Over HTTP the bytes are sent as given; the in-memory layer, which has no wire, maps it by status (a 2xx
   *   counts as a body that does not decode).
   * @since 0.1.0
   * @category faults
   */
  Fault,
  /**
   * When a fault fires: on requests to `endpoint` (one of {@link Endpoint}; any when omitted) of `user` (any when
   * omitted), after skipping the first `skip` matching requests, for `times` requests (default 1; `Infinity` for all).
   *
   * @example
   * ```ts
   * // The 2nd create-run request is processed but its answer is a 500:
   * zapier.injectFault({ endpoint: FakeZapier.Endpoint.createRun, skip: 1, fault: FakeZapier.Fault.status(500, { afterCommit: true }) })
   * ```
   * @since 0.1.0
   * @category faults
   */
  type FaultRule
} from "./internal/fault.js"
export {
  /**
   * The Trigger Inbox chaos plan that the repository's chaos test (over loopback HTTP, with a consumer process
   * killed with SIGKILL mid-handler, a consumer scope interrupted mid-handler, and a restart) and the bench's
   * `triggers.chaos` figures both run: `faults` to inject (429 and 503 on lease and ack, ack answers lost after
   * commit, dropped event streams), the handler's duration, the consumer's options, and the share of the events
   * emitted before the first consumer starts.
   *
   * @example
   * ```ts
   * import { FakeZapier } from "@effect-zapier/testing"
   * import { Effect } from "effect"
   *
   * const injectChaos = Effect.gen(function* () {
   *   const zapier = yield* FakeZapier.FakeZapier
   *   for (const rule of FakeZapier.inboxChaosPlan.faults) yield* zapier.injectFault(rule)
   * })
   * ```
   * @since 0.2.0
   * @category faults
   */
  inboxChaosPlan
} from "./internal/inboxChaos.js"
export {
  /**
   * One attempt to deliver a run callback (Zapier → the partner's callback URL): `delivery` is 1, or 2 for a planned
   * duplicate; `attempt` counts retries within a delivery (0 for a dropped one); `status` is the partner's HTTP
   * status, `network` for no answer (refused, reset, timed out), or `dropped` when the plan dropped it.
   * @since 0.1.0
   * @category ledger
   */
  type CallbackEntry,
  /**
   * One Connect UI session that finished (or was refused).
   * @since 0.1.0
   * @category ledger
   */
  type ConnectEntry,
  /**
   * The callback delivery attempts of one run.
   * @since 0.1.0
   * @category ledger
   */
  callbacksOf,
  /**
   * Creates counted per idempotency key (read from what the caller sent: Zapier's create has no key of its own).
   * @since 0.1.0
   * @category ledger
   */
  createsPerKey,
  /**
   * One token issued by the token endpoint.
   * @since 0.1.0
   * @category ledger
   */
  type ExchangeEntry,
  /**
   * The tokens issued to one user (optionally of one kind).
   * @since 0.1.0
   * @category ledger
   */
  exchangesOf,
  /**
   * Everything that happened, in order.
   * @since 0.1.0
   * @category ledger
   */
  type Ledger,
  /**
   * One action lookup (`GET /v2/actions`) and the fresh ids it issued.
   * @since 0.1.0
   * @category ledger
   */
  type LookupEntry,
  /**
   * The action lookups one user made.
   * @since 0.1.0
   * @category ledger
   */
  lookupsOf,
  /**
   * One read of a run, with the status it returned.
   * @since 0.1.0
   * @category ledger
   */
  type PollEntry,
  /**
   * The reads of one run.
   * @since 0.1.0
   * @category ledger
   */
  pollsOf,
  /**
   * One request (HTTP, or a logical one for the in-memory layer). `at` is epoch millis on the model's clock.
   * @since 0.1.0
   * @category ledger
   */
  type RequestEntry,
  /**
   * One run created.
   * @since 0.1.0
   * @category ledger
   */
  type RunEntry,
  /**
   * Zapier's word for a run's state on the wire.
   * @since 0.1.0
   */
  type RunStatus,
  /**
   * Requests per endpoint, e.g. `{ "GET /v2/action-runs/{id}/": 3, ... }`.
   * @since 0.1.0
   * @category ledger
   */
  requestsByEndpoint,
  /**
   * The runs one user created.
   * @since 0.1.0
   * @category ledger
   */
  runsOf
} from "./internal/ledger.js"
export type {
  /**
   * Counts the tests read. @internal
   * @since 0.1.0
   */
  InboxCounts
} from "./internal/model/inbox.js"
export {
  /**
   * Ids and keys of {@link sampleSeed}.
   * @since 0.1.0
   * @category fixtures
   */
  sample,
  /**
   * The channels of the sample Slack workspace: the choices of `channel` (23 of them: three pages of 10).
   * @since 0.1.0
   * @category fixtures
   */
  sampleChannels,
  /**
   * A ready catalog for examples and tests: a Slack-like app with a succeeding, a failing and a never-finishing
   * action (plus a SEARCH and an instant READ), a spreadsheet app with a 10 s action, and an app without
   * authentication. No users or connections: the flow starts with none. Register a partner key for the HTTP server
   * with `FakeZapierServer` / `PartnerKey.register`.
   *
   * Input fields: `send_channel_message` takes `channel` (required, a dropdown of {@link sampleChannels}), `text`
   * (required), `send_as_bot` (a boolean that `invalidates`: when `true`, `bot_name` (required) and `bot_icon`
   * appear), an info field, and a fieldset "Advanced" with `unfurl_links` (boolean, default `true`) and `mentions`
   * (a list of strings); its output fields are `ok`, `channel`, `text`, `ts`. `create_spreadsheet_row` has
   * `spreadsheet`, then `worksheet` once a spreadsheet is chosen, then one field per column (`COL$A`, …) once a
   * worksheet is chosen. `uppercase` takes `text` (required).
   * @since 0.1.0
   * @category fixtures
   */
  sampleSeed
} from "./internal/sample.js"
export type {
  /**
   * An action of a seeded app and the lifecycle of its runs (default: success after 1 s with no results), with
   * its input fields (default none) and output fields (default none).
   * @since 0.1.0
   * @category seed
   */
  ActionSeed,
  /**
   * An app of the catalog. `service` is the key Connect UI reports (for example `SlackAPI`).
   * @since 0.1.0
   * @category seed
   */
  AppSeed,
  /**
   * What happens to one callback delivery: sent (`deliver`), never sent (`drop`), or sent twice (`duplicate`).
   * @since 0.1.0
   * @category seed
   */
  CallbackPlan,
  /**
   * How the fake posts run callbacks.
   * @since 0.1.0
   * @category seed
   */
  CallbackSeed,
  /**
   * One choice of a `SELECT` field: a bare value, or a value with a label (and an id; default the value).
   * @since 0.1.0
   * @category seed
   */
  ChoiceSeed,
  /**
   * The choices of a field: fixed, or computed from the inputs filled so far (a dropdown that depends on another
   * field). They are served in pages of `Seed.choicesPageSize`.
   * @since 0.1.0
   * @category seed
   */
  ChoicesSeed,
  /**
   * A connection to seed (or add). Ids are generated (numeric strings) unless given.
   * @since 0.1.0
   * @category seed
   */
  ConnectionSeed,
  /**
   * @since 0.1.0 @category seed
   */
  FieldSeed,
  /**
   * A titled group of fields.
   * @since 0.1.0
   * @category seed
   */
  FieldsetSeed,
  /**
   * An action's input fields: fixed, or computed from the inputs filled so far (fields that appear when another
   * one changes).
   * @since 0.1.0
   * @category seed
   */
  FieldsSeed,
  /**
   * A piece of help text among the fields.
   * @since 0.1.0
   * @category seed
   */
  InfoFieldSeed,
  /**
   * An input field of an action. `valueType` defaults to `STRING`; a field with `choices` is a `SELECT` field
   * unless `format` says otherwise. `when` makes it a dependent field: it is only among the fields while `when`
   * holds for the inputs (pair it with `invalidates: true` on the field it depends on).
   * @since 0.1.0
   * @category seed
   */
  InputFieldSeed,
  /**
   * One output field of an action.
   * @since 0.1.0
   * @category seed
   */
  OutputFieldSeed,
  /**
   * A public key the partner registered for its JWTs: an SPKI PEM or a public JWK.
   * @since 0.1.0
   * @category seed
   */
  PartnerKeySeed,
  /**
   * The partner as Zapier registered it at onboarding.
   * @since 0.1.0
   * @category seed
   */
  PartnerSeed,
  /**
   * The results of a successful run: fixed, or computed from the run's inputs.
   * @since 0.1.0
   * @category scripts
   */
  ResultsSeed,
  /**
   * What the model keeps of the runs and action ids that pile up: finished runs `runTtl` after they ended (default
   * 7 days, Zapier's retention), at most `maxRuns` finished runs (default 10,000) and `maxActionIds` issued action
   * ids (default 10,000), the oldest dropped first; pending runs always. The ledger is not bounded.
   * @since 0.3.0
   * @category seed
   */
  RetentionSeed,
  /**
   * One error of a scripted failing run, as Zapier reports it in `errors[]` (`delay` is sent in whole seconds).
   * @since 0.1.0
   * @category scripts
   */
  RunErrorSeed,
  /**
   * Everything a fresh model starts with. Every field is optional.
   * @since 0.1.0
   * @category seed
   */
  Seed,
  /**
   * An end user provisioned up front, with connections.
   * @since 0.1.0
   * @category seed
   */
  UserSeed
} from "./internal/seed.js"
export {
  /**
   * The lifecycle of every run of an action: succeed after a duration with results, fail after a duration with
   * `errors[]`, or stay pending forever. The status is computed from the clock whenever the run is read.
   * @since 0.1.0
   * @category scripts
   */
  RunScript
} from "./internal/seed.js"
export {
  /**
   * A value given to a control method of {@link FakeZapier} that the model cannot use, found before anything is
   * changed: `injectFault` with a `skip`, `times` or status that is not a whole number in its range, a duration (a
   * `Fault.delay`, a `retryAfter`) that is negative, NaN, unreadable or infinite, or a fault the model does not know;
   * `setRateLimit` with a limit that is NaN, negative, a fraction or `Infinity`. `method` names the control method,
   * `field` the path in its argument (`fault.duration`, `skip`, `perMinute`), `value` what was given, `allowed` what
   * the field takes.
   *
   * @example
   * ```ts
   * import { FakeZapier } from "@effect-zapier/testing"
   * import { Effect } from "effect"
   *
   * const refused = Effect.gen(function* () {
   *   const zapier = yield* FakeZapier.FakeZapier
   *   return yield* zapier.injectFault({ fault: FakeZapier.Fault.delay("-1 seconds") })
   * }).pipe(
   *   Effect.catchTag("InvalidControl", (e) => Effect.succeed(e.message)),
   *   Effect.provide(FakeZapier.layer(FakeZapier.sampleSeed))
   * )
   * // 'FakeZapier.injectFault: fault.duration is "-1 seconds"; it takes a finite duration of zero or more (…). …'
   * ```
   * @since 0.3.0
   * @category errors
   */
  InvalidControl,
  /**
   * The seed given to {@link layer} (or `FakeZapierServer.layer`) has a field the model cannot use, found when the
   * layer is built: `field` is its path in the seed (`retention.maxRuns`, `callbacks.retryDelay`, …), `value` what
   * was given, `allowed` what the field takes. Counts are whole numbers (a NaN, a fraction, an `Infinity` or a
   * number below the least allowed is refused); durations are finite and not negative.
   *
   * @example
   * ```ts
   * import { FakeZapier } from "@effect-zapier/testing"
   * import { Effect, Layer } from "effect"
   *
   * const refused = Layer.build(FakeZapier.layer({ retention: { maxRuns: Number.NaN } })).pipe(
   *   Effect.scoped,
   *   Effect.catchTag("InvalidSeed", (e) => Effect.succeed(e.message))
   * )
   * // "FakeZapier seed: retention.maxRuns is NaN; it takes a whole number of at least 1. …"
   * ```
   * @since 0.3.0
   * @category errors
   */
  InvalidSeed
} from "./internal/seedSchema.js"

/**
 * The control tag of the model.
 * @since 0.1.0
 * @category tags
 */
export class FakeZapier extends Context.Tag("@effect-zapier/testing/FakeZapier")<FakeZapier, Control>() {}

/**
 * How {@link layer}'s `ActionRuns.get` reads a run, as a live client configured with the same options would:
 * `poll` (default, `GET /v2/action-runs/{id}/`) or `long-poll` (the Actions API's `GET /actions/v2/runs/{id}`,
 * held until the run ends or `longPollWait` passes, default 30 s; a pending answer is `held` with the 202's
 * `Retry-After: 1`; metered in its own rate-limit bucket).
 *
 * @example
 * ```ts
 * import { ConnectionStore, EmbeddedActions } from "@effect-zapier/core"
 * import { FakeZapier } from "@effect-zapier/testing"
 * import { Layer } from "effect"
 *
 * const LongPolled = EmbeddedActions.layer.pipe(
 *   Layer.provideMerge(FakeZapier.layer(FakeZapier.sampleSeed, { runReads: "long-poll", longPollWait: "30 seconds" })),
 *   Layer.provide(ConnectionStore.layerMemory)
 * )
 * ```
 * @since 0.1.0
 * @category layers
 */
export interface LayerOptions {
  readonly runReads?: "poll" | "long-poll" | undefined
  readonly longPollWait?: Duration.DurationInput | undefined
}

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
 * - `ActionRuns.get` of another user's run (or an unknown id) is `NotFound`. With `runReads: "long-poll"` it is
 *   the Actions API's held read (see {@link LayerOptions}).
 * - Fault rules and the rate limit apply as they would over HTTP (a 5xx, a 408 or a drop on create is
 *   `RunOutcomeUnknown`; on a safe request they are `ZapierUnavailable`).
 *
 * @example
 * ```ts
 * import { ConnectionStore, EmbeddedActions } from "@effect-zapier/core"
 * import { FakeZapier } from "@effect-zapier/testing"
 * import { Layer } from "effect"
 *
 * // In a test: it.effect("runs", () => program.pipe(Effect.provide(TestZapier)))
 * const TestZapier = EmbeddedActions.layer.pipe(
 *   Layer.provideMerge(FakeZapier.layer(FakeZapier.sampleSeed)),
 *   Layer.provide(ConnectionStore.layerMemory)
 * )
 * ```
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  seed?: Seed,
  options?: LayerOptions
): Layer.Layer<
  | TokenExchange.TokenExchange
  | Connections.Connections
  | ActionCatalog.ActionCatalog
  | ActionRuns.ActionRuns
  | Apps.Apps
  | TriggerInboxes.TriggerInboxes
  | Triggers.Triggers
  | FakeZapier,
  InvalidSeed
> =>
  Layer.unwrapScoped(
    Effect.map(Areas.makeModel(seed ?? {}), (model) =>
      Layer.merge(
        Layer.effectContext(
          Areas.services(model, {
            runReads: options?.runReads,
            longPollWaitSeconds:
              options?.longPollWait === undefined
                ? undefined
                : Math.floor(Duration.toSeconds(Duration.decode(options.longPollWait)))
          })
        ),
        Layer.succeed(FakeZapier, model.control)
      )
    )
  )
