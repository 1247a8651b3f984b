/**
 * `POST /zapier/webhooks/connections`: where Zapier announces that one of the users' connections will expire
 * (`connection.expiry_scheduled`). `ConnectionWebhooks.handler` of `@effect-zapier/http` verifies the delivery's
 * Standard Webhooks signature with the subscription's secret before reading anything, refuses old timestamps,
 * deduplicates redeliveries, and hands the notice to `ConnectionWebhooks.markExpiring`, which marks the stored
 * connection (no Zapier request). From then on `GET /api/apps/:app/connection` reports it expiring, with a
 * reconnect link.
 *
 * The route needs no exemption from `Security.middleware`: Zapier's server-to-server POST carries no `Origin` or
 * `Sec-Fetch-Site` and its body is JSON, so the same-origin and JSON rules let it through, and the 64 KiB limit
 * applies as to every route. What authenticates it is the signature, never a cookie: it takes no session.
 */
import { HttpApiBuilder } from "@effect/platform"
import type { ConnectionStore } from "@effect-zapier/core"
import { ConnectionWebhooks } from "@effect-zapier/http"
import { Effect, Layer, type Redacted } from "effect"

/** The route's path: the `callback_url` of the subscription is this app's origin and this path. */
export const webhookPath = "/zapier/webhooks/connections"

/**
 * Mounts the route when the subscription's secret is configured; without one the route does not exist (404), so
 * no delivery is ever believed unverified.
 */
export const layer = (
  secret: Redacted.Redacted<string> | undefined
): Layer.Layer<never, never, ConnectionStore.ConnectionStore> =>
  secret === undefined
    ? Layer.empty
    : HttpApiBuilder.Router.use((router) =>
        Effect.gen(function* () {
          const context = yield* Effect.context<ConnectionStore.ConnectionStore>()
          const handler = ConnectionWebhooks.handler({
            secret,
            // A store failure answers 500, so Zapier delivers the notice again.
            onExpiring: (event) => Effect.provide(ConnectionWebhooks.markExpiring(event), context)
          })
          yield* router.post(webhookPath, handler)
        })
      )
