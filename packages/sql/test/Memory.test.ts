import { ConnectionStore } from "@effect-zapier/core"
import * as Effect from "effect/Effect"
import { fleetSuite, storeSuite } from "./StoreSuite.js"

// The reference: the same suite the SQL stores must pass, run against core's in-memory store.
storeSuite("ConnectionStore.layerMemory", ConnectionStore.layerMemory)
fleetSuite(
  "ConnectionStore.layerMemory shared by two callers",
  Effect.map(ConnectionStore.makeMemory, (store) => [store, store] as const)
)
