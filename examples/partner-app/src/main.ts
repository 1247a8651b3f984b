/**
 * `pnpm --filter partner-app start`: the partner backend and its page.
 *
 * Without `ZAPIER_*` variables it starts a fake Zapier (`FakeZapierServer`) in this process and runs against it;
 * with `ZAPIER_CLIENT_ID` (and the other variables of `ZapierHttp.layerFromEnv`) set, against Zapier. Prints the
 * page's URL. Options: `PARTNER_*` (see `PartnerApp.config`), telemetry: `OTEL_*` (see `Telemetry`).
 */
import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { FakeZapierServer } from "@effect-zapier/testing"
import { Console, Effect, Layer } from "effect"
import * as PartnerApp from "./PartnerApp.js"
import * as Telemetry from "./Telemetry.js"
import * as Zapier from "./Zapier.js"

const live = (process.env.ZAPIER_CLIENT_ID ?? "") !== ""

const main = Effect.gen(function* () {
  const options = yield* PartnerApp.config
  const App = PartnerApp.layer(options)
  const Announce = Layer.effectDiscard(
    Effect.gen(function* () {
      const url = yield* PartnerApp.url
      yield* Console.log(`partner-app: open ${url}  (data in ${options.dataDir})`)
    })
  )
  if (live) {
    yield* Console.log("partner-app: against Zapier (ZAPIER_* variables set)")
    return yield* Layer.launch(
      Announce.pipe(Layer.provide(App), Layer.provide(Zapier.layerLive), Layer.provide(NodeHttpClient.layerUndici))
    )
  }
  const AnnounceFake = Layer.effectDiscard(
    Effect.flatMap(FakeZapierServer.FakeZapierServer, (server) =>
      Console.log(`partner-app: against the fake Zapier at ${server.url} (set ZAPIER_* to use Zapier)`)
    )
  )
  return yield* Layer.launch(
    Layer.mergeAll(Announce.pipe(Layer.provide(App)), AnnounceFake).pipe(
      Layer.provide(Zapier.layerFake()),
      Layer.provide(NodeHttpClient.layerUndici)
    )
  )
})

NodeRuntime.runMain(main.pipe(Effect.provide(Telemetry.layerFromEnv)))
