/**
 * `@effect-zapier/connect`: open Zapier's Connect UI from the partner's page (popup or redirect) and hand the
 * callback payload back to the backend. Browser-only, dependency-free.
 *
 * @since 0.1.0
 */
export * from "./Connect.js"
