/**
 * The whole partner backend as one layer: the HTTP API and the page on `NodeHttpServer`, over the library's
 * `EmbeddedActions` (connections stored in SQLite), given the Zapier services (live or fake).
 *
 * ```
 * NodeHttpServer ─ HttpApiBuilder.serve
 *                   ├─ PartnerApi: session · apps · runs · triggers (Handlers, Authentication ← Sessions)
 *                   │   (apps: the reconnect links of expiring connections kept in memory, ReconnectLinks)
 *                   ├─ Security.middleware: same-origin state changes, JSON bodies, 413, CSP/nosniff/DENY
 *                   ├─ GET / and /app.js                   (Web)
 *                   ├─ GET /zapier/callback                (Callback: ConnectCallback.handler)
 *                   └─ POST /zapier/webhooks/connections   (Webhooks: ConnectionWebhooks.handler, markExpiring)
 * Runs ─ EmbeddedActions ─ ConnectionStore (SqliteStore: <dataDir>/zapier.db)
 *      │                 └─ ActionRuns with status tracking ─ Zapier services (ZapierHttp: live or fake)
 *      ├─ DurableRuns (DurableSqlite: <dataDir>/durable.db) ─ the same EmbeddedActions and ActionRuns
 *      └─ RunStore (SQLite: <dataDir>/partner.db)
 * Watches ─ TriggerInbox (the consumer) ─ TriggerInboxes, Triggers (Zapier services)
 *         ├─ a consumer fiber per watched inbox, in the app's scope
 *         └─ TriggerStore (SQLite: <dataDir>/partner.db)
 * ```
 */
import * as Fs from "node:fs"
import { createServer } from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"
import { Headers, HttpApiBuilder, HttpMiddleware, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Domain, EmbeddedActions, Errors, TriggerInbox } from "@effect-zapier/core"
import type { ZapierHttp } from "@effect-zapier/http"
import * as SqliteStore from "@effect-zapier/sql/SqliteStore"
import * as DurableSqlite from "@effect-zapier/workflow/DurableSqlite"
import { Config, ConfigError, Duration, Effect, Either, Layer, Option, Redacted, Schema } from "effect"
import { PartnerApi } from "./Api.js"
import * as Callback from "./Callback.js"
import * as Handlers from "./Handlers.js"
import * as ReconnectLinks from "./ReconnectLinks.js"
import * as RunStore from "./RunStore.js"
import * as Runs from "./Runs.js"
import * as Security from "./Security.js"
import * as Session from "./Session.js"
import * as TriggerStore from "./TriggerStore.js"
import * as Watches from "./Watches.js"
import * as Web from "./Web.js"
import * as Webhooks from "./Webhooks.js"

export interface Options {
  /** Port to listen on (0: any free port). */
  readonly port: number
  readonly host: string
  /** Where the SQLite files live (created if missing). */
  readonly dataDir: string
  /** The session cookie's HMAC key. */
  readonly sessionSecret: Redacted.Redacted<string>
  readonly sessionLifetime: Duration.Duration
  /** `Secure` cookies (serve over HTTPS then). */
  readonly secureCookies: boolean
  /** The apps offered to users. */
  readonly apps: ReadonlyArray<Runs.OfferedApp>
  /** The largest request body accepted, in bytes (default 64 KiB); larger ones get 413. */
  readonly maxBodyBytes?: number | undefined
  /**
   * The signing secret (`whsec_…`) of the app's connection-webhook subscription: with it, Zapier's
   * `connection.expiry_scheduled` deliveries are received at `POST /zapier/webhooks/connections`. Without it the
   * route is not mounted (404).
   */
  readonly webhookSecret?: Redacted.Redacted<string> | undefined
}

/** `slack,google-sheets,formatter:noauth`: app ids, `:noauth` for apps that run without a connection. */
export const parseApps = (value: string): ReadonlyArray<Runs.OfferedApp> =>
  value.split(",").flatMap((entry) => {
    const [id, flag] = entry.split(":")
    return Option.match(decodeAppId(id ?? ""), {
      onNone: () => [],
      onSome: (app) => [{ id: app, requiresAuth: flag?.trim() !== "noauth" }]
    })
  })
const decodeAppId = Schema.decodeUnknownOption(Domain.AppId)

const randomSecret = () =>
  Redacted.make(Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(32))).toString("base64url"))

/**
 * The options from `PARTNER_*` variables: `PARTNER_PORT` (3000), `PARTNER_HOST` (127.0.0.1), `PARTNER_DATA_DIR`
 * (a folder under the system's temp dir), `PARTNER_SESSION_SECRET` (at least 32 characters; random per start
 * when unset, so sessions end with the process), `PARTNER_SESSION_LIFETIME` (12 hours), `PARTNER_SECURE_COOKIES`
 * (false), `PARTNER_APPS` (`slack,google-sheets,formatter:noauth`, the fake's sample apps), `PARTNER_MAX_BODY_BYTES`
 * (65536: larger request bodies get 413), `PARTNER_ZAPIER_WEBHOOK_SECRET` (the `whsec_…` signing secret of the
 * connection-webhook subscription; unset: the webhook route is not mounted).
 */
export const config: Config.Config<Options> = Config.all({
  port: Config.integer("PARTNER_PORT").pipe(
    Config.validate({
      message: "PARTNER_PORT must be a port (0 for any free one)",
      validation: (p) => p >= 0 && p < 65536
    }),
    Config.withDefault(3000)
  ),
  host: Config.string("PARTNER_HOST").pipe(Config.withDefault("127.0.0.1")),
  dataDir: Config.string("PARTNER_DATA_DIR").pipe(
    Config.withDefault(Path.join(Os.tmpdir(), "effect-zapier-partner-app"))
  ),
  sessionSecret: Config.option(Config.redacted("PARTNER_SESSION_SECRET")).pipe(
    Config.mapOrFail((secret) =>
      Option.match(secret, {
        onNone: () => Either.right(randomSecret()),
        onSome: (s) =>
          Redacted.value(s).length >= 32
            ? Either.right(s)
            : Either.left(ConfigError.InvalidData(["PARTNER_SESSION_SECRET"], "use at least 32 random characters"))
      })
    )
  ),
  sessionLifetime: Config.duration("PARTNER_SESSION_LIFETIME").pipe(Config.withDefault(Duration.hours(12))),
  secureCookies: Config.boolean("PARTNER_SECURE_COOKIES").pipe(Config.withDefault(false)),
  maxBodyBytes: Config.integer("PARTNER_MAX_BODY_BYTES").pipe(
    Config.validate({ message: "PARTNER_MAX_BODY_BYTES must be a positive number of bytes", validation: (n) => n > 0 }),
    Config.withDefault(Security.defaultMaxBodyBytes)
  ),
  webhookSecret: Config.option(Config.redacted("PARTNER_ZAPIER_WEBHOOK_SECRET")).pipe(
    Config.mapOrFail((secret) =>
      Option.match(secret, {
        onNone: () => Either.right(undefined),
        onSome: (s) =>
          /^whsec_[A-Za-z0-9+/]+={0,2}$/.test(Redacted.value(s).trim())
            ? Either.right(s)
            : Either.left(
                ConfigError.InvalidData(
                  ["PARTNER_ZAPIER_WEBHOOK_SECRET"],
                  "use the whsec_… secret Zapier answered when the connection-webhook subscription was created"
                )
              )
      })
    )
  ),
  apps: Config.string("PARTNER_APPS").pipe(
    Config.withDefault("slack,google-sheets,formatter:noauth"),
    Config.mapOrFail((value) => {
      const apps = parseApps(value)
      return apps.length > 0
        ? Either.right(apps)
        : Either.left(
            ConfigError.InvalidData(["PARTNER_APPS"], "list at least one app id, e.g. slack,formatter:noauth")
          )
    })
  )
})

/** The SQLite folder, created if missing. */
const ensureDir = (dir: string) =>
  Effect.try({
    try: () => Fs.mkdirSync(dir, { recursive: true }),
    catch: (e) =>
      new Errors.StoreUnavailable({
        operation: "open",
        reason: `the data folder ${JSON.stringify(dir)} could not be created (${e instanceof Error ? e.message : String(e)})`
      })
  })

/** The library's program and the partner's runs, over the Zapier services. */
const services = (options: Options) => {
  const ConnectionStoreLive = Layer.unwrapEffect(
    Effect.as(ensureDir(options.dataDir), SqliteStore.layer({ filename: Path.join(options.dataDir, "zapier.db") }))
  )
  const PartnerDb = Layer.unwrapEffect(
    Effect.as(ensureDir(options.dataDir), SqliteClient.layer({ filename: Path.join(options.dataDir, "partner.db") }))
  )
  const RunStoreLive = RunStore.layer.pipe(Layer.provide(PartnerDb))
  // Every poll of a run, by the program or by a durable run, records Zapier's status on the partner's record.
  const TrackedRuns = Runs.layerStatusTracking.pipe(Layer.provide(RunStoreLive))
  const Actions = EmbeddedActions.layer.pipe(Layer.provide(TrackedRuns), Layer.provideMerge(ConnectionStoreLive))
  // Runs awaited by the durable engine, its journal in SQLite beside the rest: they survive restarts.
  const Durable = Layer.unwrapEffect(
    Effect.as(
      ensureDir(options.dataDir),
      DurableSqlite.layerSingle({ sqlite: { filename: Path.join(options.dataDir, "durable.db") } })
    )
  ).pipe(Layer.provide(Layer.merge(Actions, TrackedRuns)))
  // The users' trigger watches: their consumers run in this layer's scope, recorded beside the runs.
  const WatchesLive = Watches.layer.pipe(
    Layer.provideMerge(TriggerInbox.layer),
    Layer.provideMerge(TriggerStore.layer.pipe(Layer.provide(PartnerDb)))
  )
  return Runs.layer.pipe(
    Layer.provideMerge(WatchesLive),
    Layer.provideMerge(Actions),
    Layer.provideMerge(Durable),
    Layer.provideMerge(RunStoreLive),
    Layer.provideMerge(Layer.succeed(Runs.OfferedApps, options.apps))
  )
}

/**
 * The partner backend, listening on `options.host:options.port`, given the Zapier services (`Zapier.layerFake`
 * or `Zapier.layerLive`). Provides the `HttpServer` (for its address).
 */
export const layer = (options: Options) => {
  const Api = HttpApiBuilder.api(PartnerApi).pipe(
    Layer.provide(Handlers.layer),
    Layer.provide(Session.layerAuthentication),
    Layer.provide(Layer.succeed(Handlers.SecureCookies, options.secureCookies))
  )
  return HttpApiBuilder.serve(
    Security.middleware({ maxBodyBytes: options.maxBodyBytes ?? Security.defaultMaxBodyBytes })
  ).pipe(
    // The platform's server span records the whole URL: not for the Connect callback (Security traces it by path).
    HttpMiddleware.withTracerDisabledWhen((request) => Security.isCallback(request.url)),
    // The server span records request headers: not a connection webhook's signature (it is a credential for its body).
    Layer.locallyWith(Headers.currentRedactedNames, (names) => [...names, "webhook-signature"]),
    Layer.provide(Web.layer),
    Layer.provide(Callback.layer),
    Layer.provide(Webhooks.layer(options.webhookSecret)),
    Layer.provide(Api),
    Layer.provide(services(options)),
    // The reconnect links of expiring connections, kept while good (Handlers and Callback share them).
    Layer.provide(ReconnectLinks.layer),
    Layer.provide(Session.layer({ secret: options.sessionSecret, lifetime: options.sessionLifetime })),
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: options.port, host: options.host }))
  )
}

/** `http://host:port` of the running server. */
export const url = Effect.map(HttpServer.HttpServer, (server) =>
  server.address._tag === "TcpAddress"
    ? `http://${server.address.hostname === "0.0.0.0" ? "127.0.0.1" : server.address.hostname}:${server.address.port}`
    : `unix:${server.address.path}`
)

export type ZapierServices = ZapierHttp.Services
