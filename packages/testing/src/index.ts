/**
 * @effect-zapier/testing: an in-memory Zapier for tests of apps built on effect-zapier (`FakeZapier.layer`), and
 * the same model served over real HTTP (`FakeZapierServer`).
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as FakeZapier from "./FakeZapier.js"
/** @since 0.1.0 */
export * as FakeZapierServer from "./FakeZapierServer.js"
/** @since 0.1.0 */
export * as FaultProxy from "./FaultProxy.js"
/** @since 0.1.0 */
export * as PartnerKey from "./PartnerKey.js"
