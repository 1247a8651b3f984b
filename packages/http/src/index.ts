/**
 * @effect-zapier/http: the live Zapier White Label layers over `@effect/platform`'s HttpClient and jose.
 *
 * @example
 * ```ts
 * import { ZapierHttp } from "@effect-zapier/http"
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { Layer } from "effect"
 *
 * const ZapierLive = ZapierHttp.layerFromEnv.pipe(Layer.provide(NodeHttpClient.layerUndici))
 * ```
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as ConnectCallback from "./ConnectCallback.js"
/** @since 0.1.0 */
export * as ConnectionWebhooks from "./ConnectionWebhooks.js"
/** @since 0.1.0 */
export * as ErrorResponse from "./ErrorResponse.js"
/** @since 0.1.0 */
export * as InboxHints from "./InboxHints.js"
/** @since 0.1.0 */
export * as InboxWire from "./InboxWire.js"
/** @since 0.1.0 */
export * as RateLimiter from "./RateLimiter.js"
/** @since 0.1.0 */
export * as RateLimiterRedis from "./RateLimiterRedis.js"
/** @since 0.1.0 */
export * as RunCallback from "./RunCallback.js"
/** @since 0.1.0 */
export * as RunEventsRedis from "./RunEventsRedis.js"
/** @since 0.1.0 */
export * as Wire from "./Wire.js"
/** @since 0.1.0 */
export * as ZapierHttp from "./ZapierHttp.js"
