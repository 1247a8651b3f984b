/**
 * @effect-zapier/core: the domain, the typed errors, the service contracts and the composed program for running
 * Zapier actions for a partner's end users. Implementations live in `@effect-zapier/http` (the live API) and
 * `@effect-zapier/testing` (an in-memory Zapier).
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as ActionCatalog from "./ActionCatalog.js"
/** @since 0.1.0 */
export * as ActionFields from "./ActionFields.js"
/** @since 0.1.0 */
export * as ActionInputs from "./ActionInputs.js"
/** @since 0.1.0 */
export * as ActionRuns from "./ActionRuns.js"
/** @since 0.1.0 */
export * as Apps from "./Apps.js"
/** @since 0.1.0 */
export * as Caching from "./Caching.js"
/** @since 0.1.0 */
export * as ConnectionStore from "./ConnectionStore.js"
/** @since 0.1.0 */
export * as Connections from "./Connections.js"
/** @since 0.1.0 */
export * as Domain from "./Domain.js"
/** @since 0.1.0 */
export * as EmbeddedActions from "./EmbeddedActions.js"
/** @since 0.1.0 */
export * as Errors from "./Errors.js"
/** @since 0.2.0 */
export * as Identifiers from "./Identifiers.js"
/** @since 0.1.0 */
export * as Metrics from "./Metrics.js"
/** @since 0.1.0 */
export * as Polling from "./Polling.js"
/** @since 0.1.0 */
export * as RunCallbacks from "./RunCallbacks.js"
/** @since 0.1.0 */
export * as RunEvents from "./RunEvents.js"
/** @since 0.1.0 */
export * as TokenExchange from "./TokenExchange.js"
/** @since 0.1.0 */
export * as TriggerInbox from "./TriggerInbox.js"
/** @since 0.2.0 */
export * as TriggerInboxDomain from "./TriggerInboxDomain.js"
/** @since 0.1.0 */
export * as TriggerInboxes from "./TriggerInboxes.js"
/** @since 0.1.0 */
export * as Triggers from "./Triggers.js"
