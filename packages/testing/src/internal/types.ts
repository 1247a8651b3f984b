/**
 * The public types of the seed, the fault plan and the ledger, for the internal modules.
 *
 * @internal
 */
export type * from "./fault.js"
export type * from "./ledger.js"
export type * from "./seed.js"
