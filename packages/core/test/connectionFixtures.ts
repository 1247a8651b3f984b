/**
 * What the connection tests share: `EmbeddedActions` over the sample fake Zapier and a memory `ConnectionStore`,
 * and those three services at hand.
 */
import { ConnectionStore, EmbeddedActions } from "@effect-zapier/core"
import { FakeZapier } from "@effect-zapier/testing"
import { Effect, Layer } from "effect"

export const TestLayer = EmbeddedActions.layer.pipe(
  Layer.provideMerge(Layer.merge(FakeZapier.layer(FakeZapier.sampleSeed), ConnectionStore.layerMemory))
)

export const services = Effect.all({
  actions: EmbeddedActions.EmbeddedActions,
  zapier: FakeZapier.FakeZapier,
  store: ConnectionStore.ConnectionStore
})
