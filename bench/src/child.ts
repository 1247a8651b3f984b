/**
 * Starts `server.ts` in a child process for the length of a scope and talks to it over IPC.
 */
import { type ChildProcess, fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Protocol from "./protocol.js"

export class ServerError extends Schema.TaggedError<ServerError>()("ServerError", { message: Schema.String }) {}

export interface FakeServer extends Protocol.Ready {
  /** The fake's ledger, counted. */
  readonly summary: Effect.Effect<Protocol.Summary, ServerError>
  /** Empties the fake's ledger. */
  readonly reset: Effect.Effect<void, ServerError>
  /** Delays every token exchange by `millis` (real time). */
  readonly tokenDelay: (millis: number) => Effect.Effect<void, ServerError>
  readonly clearFaults: Effect.Effect<void, ServerError>
}

const serverModule = fileURLToPath(new URL("./server.ts", import.meta.url))

/** Spawns the fake server with `config`; it is stopped when the scope closes. */
export const start = (config: Protocol.ServerConfig): Effect.Effect<FakeServer, ServerError, Scope.Scope> =>
  Effect.gen(function* () {
    const runtime = yield* Effect.runtime<never>()
    const ready = yield* Deferred.make<Protocol.Ready, ServerError>()
    const pending = new Map<number, Deferred.Deferred<Protocol.Reply, ServerError>>()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        fork(serverModule, [JSON.stringify(config)], {
          execArgv: process.execArgv.filter((a) => a !== "--expose-gc"),
          stdio: ["ignore", "inherit", "inherit", "ipc"]
        })
      ),
      (child: ChildProcess) =>
        Effect.async<void>((resume) => {
          if (child.exitCode !== null) return resume(Effect.void)
          child.once("exit", () => resume(Effect.void))
          child.disconnect()
        })
    )
    const fail = (message: string) => {
      const error = new ServerError({ message })
      Runtime.runFork(runtime)(Deferred.fail(ready, error))
      for (const d of pending.values()) Runtime.runFork(runtime)(Deferred.fail(d, error))
      pending.clear()
    }
    child.on("exit", (code) => fail(`the fake server exited (code ${code})`))
    child.on("message", (message: unknown) => {
      if (Schema.is(Protocol.Ready)(message)) {
        Runtime.runFork(runtime)(Deferred.succeed(ready, message))
        return
      }
      if (!Schema.is(Protocol.Reply)(message)) return fail(`unexpected message from the fake server`)
      const waiter = pending.get(message.id)
      if (message.error !== undefined || waiter === undefined) return fail(message.error ?? "unmatched reply")
      pending.delete(message.id)
      Runtime.runFork(runtime)(Deferred.succeed(waiter, message))
    })
    let next = 0
    const ask = (request: (id: number) => Protocol.Request) =>
      Effect.gen(function* () {
        const id = ++next
        const reply = yield* Deferred.make<Protocol.Reply, ServerError>()
        pending.set(id, reply)
        yield* Effect.sync(() => child.send(request(id)))
        return yield* Deferred.await(reply)
      })
    const urls = yield* Deferred.await(ready)
    return {
      ...urls,
      summary: Effect.flatMap(
        ask((id) => ({ id, op: "summary" })),
        (r) => (r.summary !== undefined ? Effect.succeed(r.summary) : new ServerError({ message: "summary missing" }))
      ),
      reset: Effect.asVoid(ask((id) => ({ id, op: "reset" }))),
      tokenDelay: (millis: number) => Effect.asVoid(ask((id) => ({ id, op: "tokenDelay", millis }))),
      clearFaults: Effect.asVoid(ask((id) => ({ id, op: "clearFaults" })))
    }
  })
