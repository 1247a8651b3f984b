/**
 * `DurableRuns` assembled on an engine: a fleet (`layerClusterWithoutSql`: one runner per process), one process
 * (`layerSingleWithoutSql`), both on the app's `SqlClient`, or memory (`layerMemory`: tests). The entry points
 * `@effect-zapier/workflow/DurablePg` and `/DurableSqlite` add the database client (each driver is an optional peer
 * dependency). Each layer also registers {@link RunWorkflow} and needs the Zapier services (`ActionRuns`,
 * `ActionCatalog`, `EmbeddedActions`: `ZapierHttp` and `EmbeddedActions.layer` in production, `FakeZapier.layer`
 * in tests).
 *
 * @example
 * ```ts
 * import { DurableLayers } from "@effect-zapier/workflow"
 *
 * // tests: the memory engine, with the Zapier services of FakeZapier.layer and EmbeddedActions.layer
 * const durable = DurableLayers.layerMemory()
 * ```
 * @since 0.1.0
 */
import * as ClusterSchema from "@effect/cluster/ClusterSchema"
import * as ClusterWorkflowEngine from "@effect/cluster/ClusterWorkflowEngine"
import { EntityAddress } from "@effect/cluster/EntityAddress"
import { EntityId } from "@effect/cluster/EntityId"
import { EntityType } from "@effect/cluster/EntityType"
import { MessageStorage } from "@effect/cluster/MessageStorage"
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import * as RunnerHealth from "@effect/cluster/RunnerHealth"
import * as Runners from "@effect/cluster/Runners"
import * as Sharding from "@effect/cluster/Sharding"
import * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as SqlMessageStorage from "@effect/cluster/SqlMessageStorage"
import * as SqlRunnerStorage from "@effect/cluster/SqlRunnerStorage"
import type * as SocketServer from "@effect/platform/SocketServer"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as WorkflowEngine from "@effect/workflow/WorkflowEngine"
import type { ActionCatalog } from "@effect-zapier/core/ActionCatalog"
import type { ActionRuns } from "@effect-zapier/core/ActionRuns"
import type { EmbeddedActions } from "@effect-zapier/core/EmbeddedActions"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as DurableRuns from "./DurableRuns.js"
import type { RunStoreUnavailable } from "./Errors.js"
import * as RunRegistry from "./RunRegistry.js"
import * as RunWorkflow from "./RunWorkflow.js"

/**
 * The services a durable run's steps call.
 * @since 0.1.0
 * @category models
 */
export type ZapierServices = ActionRuns | ActionCatalog | EmbeddedActions

/** @since 0.1.0 */
export interface Options extends DurableRuns.Options, RunWorkflow.Options {}

/** @since 0.1.0 */
export interface StoreOptions {
  /**
   * Prefix of every table (the engine's `<prefix>_messages`, `_replies`, `_runners`, `_locks`, and `<prefix>_runs`);
   * default `zapier_durable`.
   */
  readonly prefix?: string | undefined
  /**
   * Passed to `@effect/cluster`'s `ShardingConfig` (shards, lock and poll intervals, …) over its defaults.
   * `entityMessagePollInterval` (default 10 s) is also the granularity of durable timers (the waits of runs with a
   * `callbackUrl`).
   */
  readonly shardingConfig?: Partial<ShardingConfig.ShardingConfig["Type"]> | undefined
}

/** @since 0.1.0 */
export interface ClusterOptions extends Options, StoreOptions {
  /** Where the other runners reach this one (default `localhost:34431`). */
  readonly runnerAddress?: { readonly host: string; readonly port: number } | undefined
  /** Where this runner listens, when it differs from `runnerAddress` (e.g. `0.0.0.0`). */
  readonly listenAddress?: { readonly host: string; readonly port: number } | undefined
  /** The runners' wire format (default `msgpack`). */
  readonly serialization?: "msgpack" | "ndjson" | undefined
}

const defaultPrefix = "zapier_durable"

/**
 * `DurableRuns` and the registered workflow over an engine and a runs table (for engines of your own).
 * @since 0.1.0
 * @category layers
 */
export const layerWith = <E1, R1, E2, R2>(
  engine: Layer.Layer<WorkflowEngine.WorkflowEngine, E1, R1>,
  registry: Layer.Layer<RunRegistry.RunRegistry, E2, R2>,
  options?: Options
): Layer.Layer<DurableRuns.DurableRuns, E1 | E2, R1 | R2 | ZapierServices> =>
  Layer.merge(DurableRuns.layerWithoutEngine(options), RunWorkflow.layer(options)).pipe(
    Layer.provide(engine),
    Layer.provide(registry)
  )

/**
 * In memory (`WorkflowEngine.layerMemory`): one process, nothing survives it. For tests, with `FakeZapier.layer`.
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options?: Options): Layer.Layer<DurableRuns.DurableRuns, never, ZapierServices> =>
  layerWith(WorkflowEngine.layerMemory, RunRegistry.layerMemory, options)

const shardingConfig = (options: ClusterOptions | StoreOptions) => {
  const cluster = options as ClusterOptions
  const address = (a: { readonly host: string; readonly port: number } | undefined) =>
    a === undefined ? Option.none() : Option.some(RunnerAddress.RunnerAddress.make({ host: a.host, port: a.port }))
  return {
    ...(cluster.runnerAddress !== undefined ? { runnerAddress: address(cluster.runnerAddress) } : {}),
    ...(cluster.listenAddress !== undefined ? { runnerListenAddress: address(cluster.listenAddress) } : {}),
    ...options.shardingConfig
  }
}

/**
 * The cluster's `PendingSignals`: a signal sent to a running execution is a `deferred` request waiting in the
 * message store for the execution's entity (the cluster engine's protocol), found by its primary key.
 */
const clusterSignals: Layer.Layer<RunWorkflow.PendingSignals, never, Sharding.Sharding | MessageStorage> = Layer.effect(
  RunWorkflow.PendingSignals,
  Effect.gen(function* () {
    const sharding = yield* Sharding.Sharding
    const store = yield* MessageStorage
    const workflow = RunWorkflow.RunWorkflow
    const entityType = EntityType.make(`Workflow/${workflow.name}`)
    const group = Context.get(workflow.annotations, ClusterSchema.ShardGroup)
    return {
      pending: (executionId, names) => {
        const entityId = EntityId.make(executionId)
        const address = new EntityAddress({
          entityType,
          entityId,
          shardId: sharding.getShardId(entityId, group(entityId))
        })
        return Effect.exists(names, (name) =>
          Effect.map(store.requestIdForPrimaryKey({ address, tag: "deferred", id: name }), Option.isSome)
        ).pipe(Effect.orElseSucceed(() => false))
      }
    }
  })
)

/** The cluster engine over a sharding stack, with the signal probe. */
const clusterEngine = <E, R>(sharding: Layer.Layer<Sharding.Sharding | MessageStorage, E, R>) =>
  clusterSignals.pipe(Layer.provideMerge(ClusterWorkflowEngine.layer), Layer.provide(sharding))

const storage = (options: StoreOptions) => {
  const prefix = options.prefix ?? defaultPrefix
  return Layer.merge(SqlMessageStorage.layerWith({ prefix }), Layer.orDie(SqlRunnerStorage.layerWith({ prefix })))
}

/**
 * One process on SQL (`SqlClient` left open: SQLite or PostgreSQL): runs survive restarts of the process; the
 * single runner owns every shard.
 * @since 0.1.0
 * @category layers
 */
export const layerSingleWithoutSql = (
  options: Options & StoreOptions = {}
): Layer.Layer<DurableRuns.DurableRuns, RunStoreUnavailable, SqlClient.SqlClient | ZapierServices> => {
  const config = ShardingConfig.layer(shardingConfig(options))
  const sharding = Sharding.layer.pipe(
    Layer.provideMerge(Runners.layerNoop),
    Layer.provideMerge(storage(options)),
    Layer.provide(RunnerHealth.layerNoop),
    Layer.provide(config)
  )
  return layerWith(clusterEngine(sharding), RunRegistry.layerSql({ prefix: options.prefix ?? defaultPrefix }), options)
}

/**
 * A runner of a fleet (`SqlClient` left open; PostgreSQL): `NodeClusterSocket` runners that reach each other on
 * `runnerAddress`, shard locks and the journal in the database. Each run is owned by one runner at a time; when a
 * runner dies its shards move to the others, which resume its runs from the journal.
 *
 * Runner health is checked by ping (`runnerHealthCheckInterval`); PostgreSQL advisory locks are per database, so
 * give each fleet a database of its own (two fleets in one database would contend for the same shard locks).
 * @since 0.1.0
 * @category layers
 */
export const layerClusterWithoutSql = (
  options: ClusterOptions = {}
): Layer.Layer<
  DurableRuns.DurableRuns,
  RunStoreUnavailable | SocketServer.SocketServerError | ConfigError.ConfigError,
  SqlClient.SqlClient | ZapierServices
> => {
  const config = shardingConfig(options)
  const sharding = NodeClusterSocket.layer({
    storage: "byo",
    shardingConfig: config,
    serialization: options.serialization
  }).pipe(Layer.provideMerge(storage(options)), Layer.provide(ShardingConfig.layerFromEnv(config)))
  return layerWith(clusterEngine(sharding), RunRegistry.layerSql({ prefix: options.prefix ?? defaultPrefix }), options)
}
