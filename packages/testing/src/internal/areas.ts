/**
 * The composition point of the fake: the one place that lists the areas. Each area module (`areas/*.ts`) holds
 * everything about its endpoints, for both faces of the fake:
 *
 * - `endpoints`: the names the ledger and fault rules use (merged into `FakeZapier.Endpoint`);
 * - `model(kit)`: its rules over the shared state, and its control methods (an `…Control` interface, merged into
 *   `FakeZapier.Control`);
 * - `routes(server, model)`: its HTTP routes for `FakeZapierServer`, built on the shared pipeline
 *   (`server/kit.ts`: ledger, fault gate, bearer authentication, Zapier's error shapes);
 * - `services(client, model)`: the core services it serves in memory for `FakeZapier.layer`, built on the shared
 *   client (`client.ts`: token cache, fault gate, the mapping to core's errors).
 *
 * Tokens and the fault plan, which every request goes through, are the kernel (`model/kernel.ts`).
 *
 * @internal
 */
import {
  type ActionCatalog,
  ActionRuns,
  type Apps,
  type Connections,
  TokenExchange,
  type TriggerInboxes,
  Triggers
} from "@effect-zapier/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Actions from "./areas/actions.js"
import * as AppsArea from "./areas/apps.js"
import * as Callbacks from "./areas/callbacks.js"
import * as Connect from "./areas/connect.js"
import * as ConnectionWebhooks from "./areas/connectionWebhooks.js"
import * as ConnectRoutes from "./areas/connectRoutes.js"
import * as Results from "./areas/results.js"
import * as Runs from "./areas/runs.js"
import * as Tokens from "./areas/tokens.js"
import * as TriggerInbox from "./areas/triggerInbox.js"
import * as TriggerInboxRoutes from "./areas/triggerInboxRoutes.js"
import * as Client from "./client.js"
import * as Kernel from "./model/kernel.js"
import * as State from "./model/state.js"
import type * as Server from "./server/kit.js"
import type * as FZ from "./types.js"

/**
 * The names of the endpoints, as the ledger and fault rules use them (method and route template).
 * @since 0.1.0
 * @category ledger
 */
export const Endpoint = {
  ...Tokens.endpoints,
  ...AppsArea.endpoints,
  ...Connect.endpoints,
  ...Actions.endpoints,
  ...Runs.endpoints,
  ...Results.endpoints,
  ...Callbacks.endpoints,
  ...TriggerInbox.endpoints,
  ...ConnectionWebhooks.endpoints
} as const

/**
 * The control side of the model: script it, act as the end user in Connect UI, and read the ledger.
 * Misuse (an unknown app, user or connection) fails with core's `NotFound`, naming the control method.
 * @since 0.1.0
 * @category control
 */
export interface Control
  extends Kernel.KernelControl,
    AppsArea.AppsControl,
    Actions.ActionsControl,
    Connect.ConnectControl,
    Runs.RunsControl,
    Callbacks.CallbacksControl,
    TriggerInbox.TriggerInboxControl,
    ConnectionWebhooks.ConnectionWebhooksControl {
  /** The Connect UI base URL used in links. */
  readonly connectUrl: string
}

/** The whole model: the kernel, each area's model, and the control side. */
export interface Model {
  readonly kernel: Kernel.Kernel
  readonly apps: AppsArea.Model
  readonly actions: Actions.Model
  readonly connect: Connect.Model
  readonly runs: Runs.Model
  readonly callbacks: Callbacks.Model
  readonly inbox: TriggerInbox.Model
  readonly webhooks: ConnectionWebhooks.Model
  readonly control: Control
}

/** Builds a fresh model from a seed, on the `Clock` in scope; callback deliveries run in the scope. */
export const makeModel = (seed: FZ.Seed, overrides?: { readonly connectUrl?: string | undefined }) =>
  Effect.gen(function* () {
    const kit = yield* State.makeKit(seed, overrides)
    const kernel = Kernel.make(kit)
    const apps = AppsArea.model(kit)
    const actions = Actions.model(kit)
    const connect = Connect.model(kit)
    const callbacks = yield* Callbacks.model(kit)
    const runs = Runs.model(kit, callbacks.schedule)
    const inbox = yield* TriggerInbox.model(kit)
    const webhooks = ConnectionWebhooks.model(kit)
    const control: Control = {
      connectUrl: kit.settings.connectUrl,
      ...apps.control,
      ...actions.control,
      ...connect.control,
      ...runs.control,
      ...callbacks.control,
      ...inbox.control,
      ...webhooks.control,
      ...kernel.control
    }
    return { kernel, apps, actions, connect, runs, callbacks, inbox, webhooks, control } satisfies Model
  })

/** Every area's routes on one server. */
export const routes = (server: Server.ServerKit, model: Model): Effect.Effect<Server.Routes> =>
  Effect.map(Tokens.routes(server), (tokens) => [
    ...tokens,
    ...AppsArea.routes(server, model.apps),
    ...ConnectRoutes.routes(server, model.connect),
    ...Actions.routes(server, model.actions),
    ...Runs.routes(server, model.runs),
    ...Results.routes(server, model.runs),
    ...Callbacks.routes(server, model.callbacks),
    ...TriggerInboxRoutes.routes(server, model.inbox),
    ...ConnectionWebhooks.routes(server, model.webhooks)
  ])

/** Work the server does in the background (the inbox's notification POSTs). */
export const background = (model: Model) => TriggerInboxRoutes.background(model.inbox)

/** How the in-memory services read runs (a client's `runReads` and `longPollWait`). */
export interface ServiceOptions {
  readonly runReads?: "poll" | "long-poll" | undefined
  /** `wait_seconds` of a long-poll read, in whole seconds (default 30). */
  readonly longPollWaitSeconds?: number | undefined
}

/** Core's services, in memory, over one model. */
export const services = (
  model: Model,
  options: ServiceOptions = {}
): Effect.Effect<
  Context.Context<
    | TokenExchange.TokenExchange
    | Connections.Connections
    | ActionCatalog.ActionCatalog
    | ActionRuns.ActionRuns
    | Apps.Apps
    | TriggerInboxes.TriggerInboxes
    | Triggers.Triggers
  >
> =>
  Effect.gen(function* () {
    const client = yield* Client.make(model.kernel)
    const actions = Actions.services(client, model.actions)
    const triggers = yield* Effect.provide(Triggers.make, actions)
    const polled = Runs.services(client, model.runs)
    const runs =
      options.runReads === "long-poll"
        ? Results.services(
            client,
            model.runs,
            Context.get(polled, ActionRuns.ActionRuns),
            options.longPollWaitSeconds ?? 30
          )
        : polled
    return Context.make(TokenExchange.TokenExchange, client.tokens).pipe(
      Context.merge(Connect.services(client, model.connect)),
      Context.merge(actions),
      Context.merge(runs),
      Context.merge(AppsArea.services(client, model.apps)),
      Context.merge(TriggerInbox.services(client, model.inbox)),
      Context.add(Triggers.Triggers, triggers)
    )
  })
