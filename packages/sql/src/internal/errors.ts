import type { SqlError } from "@effect/sql/SqlError"
import { StoreUnavailable } from "@effect-zapier/core/Errors"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"

/**
 * Only the error *code* of a driver error is ever reported (a SQLSTATE, an `SQLITE_*` code or a Node `E*` code):
 * driver messages can quote values (a `state`, a connection string's user) and are never copied.
 */
const codeOf = (cause: unknown, depth = 0): string | undefined => {
  if (depth > 4 || !Predicate.isObject(cause)) return undefined
  if ("code" in cause && typeof cause.code === "string" && /^[A-Z0-9_]{1,40}$/i.test(cause.code)) return cause.code
  if ("cause" in cause) return codeOf(cause.cause, depth + 1)
  return undefined
}

const advice: ReadonlyArray<readonly [RegExp, string]> = [
  [/^ECONNREFUSED$/, "nothing accepted the connection: check the host and port and that the server is running"],
  [/^(ENOTFOUND|EAI_AGAIN)$/, "the database host name could not be resolved: check the host"],
  [/^(ETIMEDOUT|ECONNRESET|EPIPE)$/, "the connection to the database was lost or timed out: try again"],
  [/^28/, "the database refused the credentials: check the user name and password"],
  [/^3D000$/, "the database does not exist: create it or fix the database name"],
  [/^42501$/, "the database user lacks a privilege the store needs (create tables, read and write them)"],
  [/^42P01$/, "a store table is missing: it may have been dropped; rebuild the layer to run the migrations"],
  [/^(40001|40P01)$/, "the database aborted the transaction because of a conflict: try again"],
  [/^(53|57P)/, "the database is overloaded or shutting down: try again later"],
  [/^08/, "the connection to the database failed: check that the server is reachable"],
  [/^SQLITE_CANTOPEN/, "the SQLite file could not be opened: check that its directory exists and is writable"],
  [/^SQLITE_(BUSY|LOCKED)/, "the SQLite file is locked by another writer: try again"],
  [/^SQLITE_READONLY/, "the SQLite file is read-only: check its permissions"],
  [/^SQLITE_(CORRUPT|NOTADB)/, "the SQLite file is not a valid database: check the path"],
  [/^SQLITE_FULL/, "the disk is full"]
]

/** Describes a driver failure by its code and what to do, never by the driver's message. */
export const describeCause = (what: string, cause: unknown, fallbackHint?: string): string => {
  const code = codeOf(cause)
  const hint = (code === undefined ? undefined : advice.find(([pattern]) => pattern.test(code))?.[1]) ?? fallbackHint
  return `${what}${code ? ` (${code})` : ""}${hint ? `; ${hint}` : ""}`
}

/** @internal */
export const fromSqlError = (operation: string, error: SqlError): StoreUnavailable =>
  new StoreUnavailable({ operation, reason: describeCause("the database could not run the statement", error.cause) })

/** A row that does not decode: only the paths of the bad fields are reported, never the stored values. */
export const fromParseError = (operation: string, table: string, error: ParseResult.ParseError): StoreUnavailable => {
  const paths = [
    ...new Set(ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => issue.path.join(".") || "row"))
  ]
  return new StoreUnavailable({
    operation,
    reason:
      `a row of ${table} does not have the expected shape (${paths.join(", ")}); ` +
      `it may have been changed outside this library`
  })
}

/** @internal */
export const fromStoreError = (operation: string, table: string) => (error: SqlError | ParseResult.ParseError) =>
  ParseResult.isParseError(error) ? fromParseError(operation, table, error) : fromSqlError(operation, error)

/** A defect while opening a database (better-sqlite3 throws from its constructor) as a typed error. */
export const fromDefect =
  (operation: string, what: string, fallbackHint?: string) =>
  (defect: unknown): StoreUnavailable =>
    new StoreUnavailable({ operation, reason: describeCause(what, defect, fallbackHint) })
