/**
 * A TCP proxy on 127.0.0.1 (an ephemeral port) in front of any upstream `host:port`, injecting network faults:
 * latency (per direction, with jitter), hang, reset before the request is read, reset after the upstream has
 * processed it, truncated responses, slow bodies, refused connections and accepted-then-closed connections.
 *
 * Point a client at `url` instead of the upstream and choose a fault with `setFault`: for every new connection,
 * or for the connection with a given ordinal (the 1st, 2nd, … accepted). A connection without an ordinal of its
 * own follows the current fault from one request to the next: client bytes arriving after response bytes start a
 * new request on a kept-alive connection, and that request is handled under the fault in place at that moment.
 * The proxy does not parse HTTP; it only sees bytes.
 *
 * Everything (the listening socket, every accepted and upstream socket, every timer) is closed with the scope.
 * Timing is real (sockets and `setTimeout`): use it in `it.live` / `it.scopedLive` tests.
 *
 * @example
 * ```ts
 * import { FaultProxy } from "@effect-zapier/testing"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const proxy = yield* FaultProxy.make({ upstream: { port: 8080 } })
 *   yield* proxy.setFault(FaultProxy.resetAfterRequest) // the upstream processes it; the client sees ECONNRESET
 *   yield* proxy.setFault(FaultProxy.hang(), { connection: 3 }) // only the 3rd connection hangs
 *   console.log(proxy.url, yield* proxy.stats)
 * }).pipe(Effect.scoped)
 * ```
 * @since 0.1.0
 */
import * as Net from "node:net"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { Lane } from "./internal/lane.js"

// ---------------------------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------------------------

/**
 * A delay of `delay` ± `jitter` (uniform, never below zero), drawn for each chunk of bytes. Order is kept.
 * @since 0.1.0
 * @category faults
 */
export interface Delay {
  readonly delay: Duration.Duration
  readonly jitter: Duration.Duration
}

/**
 * Bytes flow both ways untouched.
 * @since 0.1.0
 * @category faults
 */
export interface PassThrough {
  readonly _tag: "PassThrough"
}
/**
 * Bytes are delayed: `request` on their way to the upstream, `response` on their way back.
 * @since 0.1.0
 * @category faults
 */
export interface Latency {
  readonly _tag: "Latency"
  readonly request: Delay
  readonly response: Delay
}
/**
 * The connection is accepted and never answered (nothing is closed). With `forwardRequest` the request reaches the
 * upstream (which processes it) and the response is dropped.
 * @since 0.1.0
 * @category faults
 */
export interface Hang {
  readonly _tag: "Hang"
  readonly forwardRequest: boolean
}
/**
 * The first client bytes are answered with a TCP reset; the upstream sees nothing.
 * @since 0.1.0
 * @category faults
 */
export interface ResetBeforeRequest {
  readonly _tag: "ResetBeforeRequest"
}
/**
 * The request reaches the upstream; when its first response byte comes back, the client connection is reset
 * (the client sees ECONNRESET and no response byte) and the upstream connection closed.
 * @since 0.1.0
 * @category faults
 */
export interface ResetAfterRequest {
  readonly _tag: "ResetAfterRequest"
}
/**
 * Only the first `bytes` bytes of the response (status line and headers included) reach the client; then the
 * connection is closed, so a `Content-Length` promises more than was sent.
 * @since 0.1.0
 * @category faults
 */
export interface Truncate {
  readonly _tag: "Truncate"
  readonly bytes: number
}
/**
 * The response reaches the client at `bytesPerSecond`.
 * @since 0.1.0
 * @category faults
 */
export interface SlowBody {
  readonly _tag: "SlowBody"
  readonly bytesPerSecond: number
}
/**
 * The connection is accepted and closed at once, before anything is read.
 * @since 0.1.0
 * @category faults
 */
export interface AcceptAndClose {
  readonly _tag: "AcceptAndClose"
}
/**
 * The listening socket is closed (open connections are destroyed, as when a server goes down), so connects fail
 * with ECONNREFUSED. Any other fault for all connections, or `clear`, listens again on the same port.
 * @since 0.1.0
 * @category faults
 */
export interface Refuse {
  readonly _tag: "Refuse"
}

/**
 * Every fault.
 * @since 0.1.0
 * @category faults
 */
export type Fault =
  | PassThrough
  | Latency
  | Hang
  | ResetBeforeRequest
  | ResetAfterRequest
  | Truncate
  | SlowBody
  | AcceptAndClose
  | Refuse

/**
 * The faults that apply to one connection (`Refuse` is about the listening socket).
 * @since 0.1.0
 * @category faults
 */
export type ConnectionFault = Exclude<Fault, Refuse>

/**
 * @since 0.1.0
 * @category faults
 */
export const passThrough: PassThrough = { _tag: "PassThrough" }

/**
 * A delay: a duration, or a duration with a jitter.
 * @since 0.1.0
 * @category faults
 */
export type DelayInput =
  | Duration.DurationInput
  | { readonly delay: Duration.DurationInput; readonly jitter?: Duration.DurationInput | undefined }

const noDelay: Delay = { delay: Duration.zero, jitter: Duration.zero }

const toDelay = (input: DelayInput | undefined): Delay => {
  if (input === undefined) return noDelay
  if (typeof input === "object" && "delay" in input) {
    return { delay: Duration.decode(input.delay), jitter: Duration.decode(input.jitter ?? Duration.zero) }
  }
  return { delay: Duration.decode(input), jitter: Duration.zero }
}

/**
 * Latency per direction, e.g. `latency({ response: { delay: "2 seconds", jitter: "1 second" } })`.
 * @since 0.1.0
 * @category faults
 */
export const latency = (options: {
  readonly request?: DelayInput | undefined
  readonly response?: DelayInput | undefined
}): Latency => ({ _tag: "Latency", request: toDelay(options.request), response: toDelay(options.response) })

/**
 * Accept and never answer; with `forwardRequest: true` the upstream still gets (and processes) the request.
 * @since 0.1.0
 * @category faults
 */
export const hang = (options?: { readonly forwardRequest?: boolean | undefined }): Hang => ({
  _tag: "Hang",
  forwardRequest: options?.forwardRequest ?? false
})

/**
 * @since 0.1.0
 * @category faults
 */
export const resetBeforeRequest: ResetBeforeRequest = { _tag: "ResetBeforeRequest" }

/**
 * @since 0.1.0
 * @category faults
 */
export const resetAfterRequest: ResetAfterRequest = { _tag: "ResetAfterRequest" }

/**
 * Deliver only the first `bytes` bytes of the response, then close.
 * @since 0.1.0
 * @category faults
 */
export const truncate = (bytes: number): Truncate => ({ _tag: "Truncate", bytes: Math.max(0, Math.floor(bytes)) })

/**
 * Deliver the response at `bytesPerSecond` (e.g. 1024 for 1 KB/s).
 * @since 0.1.0
 * @category faults
 */
export const slowBody = (bytesPerSecond: number): SlowBody => ({
  _tag: "SlowBody",
  bytesPerSecond: Math.max(1, bytesPerSecond)
})

/**
 * @since 0.1.0
 * @category faults
 */
export const acceptAndClose: AcceptAndClose = { _tag: "AcceptAndClose" }

/**
 * @since 0.1.0
 * @category faults
 */
export const refuse: Refuse = { _tag: "Refuse" }

// ---------------------------------------------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------------------------------------------

/**
 * What the proxy saw. Bytes are counted where they were read (`from…`) and where they were written (`to…`), so a
 * hang or a truncation shows as a difference between the two.
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  /** Connections accepted. */
  readonly connections: number
  /** Connections open now. */
  readonly open: number
  readonly bytesFromClient: number
  readonly bytesToUpstream: number
  readonly bytesFromUpstream: number
  readonly bytesToClient: number
  /**
   * How many times each fault was applied: per connection, and again per request on a kept-alive connection that
   * follows the current fault; `Refuse` counts the times the listening socket was closed.
   */
  readonly faults: Readonly<Record<Fault["_tag"], number>>
}

/**
 * Which connections a fault is for: the ordinal(s) of connections (1 for the first accepted).
 * @since 0.1.0
 * @category models
 */
export interface ConnectionSelector {
  readonly connection: number | ReadonlyArray<number>
}

/**
 * A running proxy.
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** `http://127.0.0.1:{port}`. */
  readonly url: string
  readonly host: string
  readonly port: number
  /**
   * Sets the fault for all new connections (and the next request on open connections without a fault of their
   * own), or, with a selector, for the connections with those ordinals (for their whole life).
   */
  readonly setFault: {
    (fault: Fault): Effect.Effect<void, FaultProxyError>
    (fault: ConnectionFault, selector: ConnectionSelector): Effect.Effect<void, FaultProxyError>
  }
  /** Back to pass-through for everything (listening again after `refuse`); per-connection faults are forgotten. */
  readonly clear: Effect.Effect<void, FaultProxyError>
  /** A snapshot of the counters. */
  readonly stats: Effect.Effect<Stats>
  /**
   * Waits until `predicate` holds for the counters and returns that snapshot: checked now, then again whenever a
   * connection is accepted or closed or a fault is applied (byte counts alone do not wake it). Tests wait on the
   * event itself this way instead of polling; give it an outer timeout that only catches real hangs.
   *
   * @example
   * ```ts
   * import { FaultProxy } from "@effect-zapier/testing"
   * import { Effect } from "effect"
   *
   * const program = Effect.gen(function* () {
   *   const proxy = yield* FaultProxy.make({ upstream: { port: 8080 } })
   *   yield* proxy.setFault(FaultProxy.hang())
   *   const { open } = yield* proxy.until((stats) => stats.faults.Hang >= 1)
   *   yield* proxy.until((stats) => stats.open < open).pipe(Effect.timeout("30 seconds"))
   * }).pipe(Effect.scoped)
   * ```
   * @since 0.1.0
   */
  readonly until: (predicate: (stats: Stats) => boolean) => Effect.Effect<Stats>
}

/**
 * The proxy as a service, for tests that build it in a layer.
 * @since 0.1.0
 * @category tags
 */
export class FaultProxy extends Context.Tag("@effect-zapier/testing/FaultProxy")<FaultProxy, Service>() {}

/**
 * The proxy could not listen (or listen again after `refuse`), or the upstream is not a `host:port`.
 * @since 0.1.0
 * @category errors
 */
export class FaultProxyError extends Schema.TaggedError<FaultProxyError>("@effect-zapier/testing/FaultProxyError")(
  "FaultProxyError",
  { reason: Schema.String }
) {
  override get message(): string {
    return `The fault proxy failed: ${this.reason}.`
  }
}

/**
 * Options of the proxy.
 * @since 0.1.0
 * @category options
 */
export interface Options {
  /** The upstream: `{ host?, port }` (host default `127.0.0.1`) or a URL such as `http://127.0.0.1:8080`. */
  readonly upstream: { readonly host?: string | undefined; readonly port: number } | string
}

// ---------------------------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------------------------

const millis = (d: Duration.Duration) => Duration.toMillis(d)

const sample = (delay: Delay): number => {
  const base = millis(delay.delay)
  const jitter = millis(delay.jitter)
  return Math.max(0, base + (Math.random() * 2 - 1) * jitter)
}

type Counters = {
  connections: number
  bytesFromClient: number
  bytesToUpstream: number
  bytesFromUpstream: number
  bytesToClient: number
  faults: Record<Fault["_tag"], number>
}

interface State {
  readonly upstream: { readonly host: string; readonly port: number }
  readonly counters: Counters
  readonly connections: Set<Connection>
  readonly byOrdinal: Map<number, ConnectionFault>
  /** Re-checked whenever a connection opens or closes or a fault is applied (see `until`). */
  readonly waiters: Set<() => void>
  current: Fault
}

const changed = (state: State) => {
  for (const waiter of [...state.waiters]) waiter()
}

/** One accepted connection and its upstream socket. */
class Connection {
  private fault: ConnectionFault
  private upstream: Net.Socket | undefined = undefined
  private up: Lane | undefined = undefined
  private readonly down: Lane
  /** Response bytes came back since the client last sent: the next client bytes start a new request. */
  private responded = false
  private delivered = 0
  private finished = false

  constructor(
    private readonly state: State,
    private readonly client: Net.Socket,
    private readonly pinned: ConnectionFault | undefined
  ) {
    this.down = new Lane(client, (n) => {
      state.counters.bytesToClient += n
    })
    this.fault = passThrough
    client.on("data", (chunk: Buffer) => this.fromClient(chunk))
    client.on("end", () => this.clientEnded())
    client.on("error", () => {})
    client.on("close", () => this.destroy())
    // Counted open before its fault applies, so a waiter woken by the fault sees it open.
    state.connections.add(this)
    this.bind(pinned ?? current(state))
  }

  private bind(fault: ConnectionFault) {
    this.fault = fault
    this.delivered = 0
    this.state.counters.faults[fault._tag]++
    changed(this.state)
    if (fault._tag === "AcceptAndClose") this.destroy()
  }

  private fromClient(chunk: Buffer) {
    this.state.counters.bytesFromClient += chunk.length
    if (this.finished) return
    if (this.responded) {
      this.responded = false
      this.bind(this.pinned ?? current(this.state))
      if (this.finished) return
    }
    switch (this.fault._tag) {
      case "ResetBeforeRequest":
        return this.reset()
      case "Hang":
        if (!this.fault.forwardRequest) return
        return this.toUpstream(chunk, 0)
      case "Latency":
        return this.toUpstream(chunk, sample(this.fault.request))
      default:
        return this.toUpstream(chunk, 0)
    }
  }

  private toUpstream(chunk: Buffer, delayMillis: number) {
    this.connectUpstream().send(chunk, delayMillis)
  }

  private connectUpstream(): Lane {
    if (this.up !== undefined) return this.up
    const socket = Net.connect({ host: this.state.upstream.host, port: this.state.upstream.port })
    this.upstream = socket
    this.up = new Lane(socket, (n) => {
      this.state.counters.bytesToUpstream += n
    })
    socket.on("data", (chunk: Buffer) => this.fromUpstream(chunk))
    socket.on("end", () => {
      if (this.finished || this.fault._tag === "Hang") return
      this.down.end()
    })
    socket.on("error", () => {})
    socket.on("close", (hadError) => {
      // The upstream went away without a clean end: so does the client.
      if (hadError && !this.finished) this.destroy()
    })
    return this.up
  }

  private fromUpstream(chunk: Buffer) {
    this.state.counters.bytesFromUpstream += chunk.length
    if (this.finished) return
    this.responded = true
    const fault = this.fault
    switch (fault._tag) {
      case "ResetAfterRequest":
        return this.reset()
      case "Hang":
        return
      case "Truncate": {
        const piece = chunk.subarray(0, Math.max(0, fault.bytes - this.delivered))
        this.delivered += piece.length
        if (piece.length > 0) this.down.send(piece, 0)
        if (this.delivered >= fault.bytes) {
          this.finished = true
          this.down.end()
          this.upstream?.destroy()
        }
        return
      }
      case "Latency":
        return this.down.send(chunk, sample(fault.response))
      case "SlowBody":
        return this.down.send(chunk, 0, fault.bytesPerSecond)
      default:
        return this.down.send(chunk, 0)
    }
  }

  private clientEnded() {
    if (this.finished) return
    if (this.up !== undefined) return this.up.end()
    // Nothing was forwarded: close our side too, unless we are hanging.
    if (this.fault._tag !== "Hang") this.client.end()
  }

  /** A TCP reset to the client; the upstream connection (if any) is closed. */
  private reset() {
    this.client.resetAndDestroy()
    this.destroy()
  }

  destroy() {
    this.finished = true
    this.up?.stop()
    this.down.stop()
    this.client.destroy()
    this.upstream?.destroy()
    if (this.state.connections.delete(this)) changed(this.state)
  }
}

/** The fault for all connections; a connection accepted just as the socket closes for `Refuse` is closed. */
const current = (state: State): ConnectionFault => {
  const fault = state.current
  return fault._tag === "Refuse" ? acceptAndClose : fault
}

const parseUpstream = (upstream: Options["upstream"]): Effect.Effect<State["upstream"], FaultProxyError> =>
  Effect.suspend(() => {
    if (typeof upstream !== "string") {
      return Number.isInteger(upstream.port) && upstream.port > 0 && upstream.port < 65536
        ? Effect.succeed({ host: upstream.host ?? "127.0.0.1", port: upstream.port })
        : Effect.fail(new FaultProxyError({ reason: `the upstream port ${upstream.port} is not a TCP port` }))
    }
    const url = URL.canParse(upstream) ? new URL(upstream) : undefined
    if (url === undefined || url.hostname === "") {
      return Effect.fail(
        new FaultProxyError({ reason: `the upstream "${upstream}" is not a URL such as http://host:port` })
      )
    }
    const port = url.port !== "" ? Number(url.port) : url.protocol === "https:" ? 443 : 80
    return Effect.succeed({ host: url.hostname.replace(/^\[|\]$/g, ""), port })
  })

const listen = (server: Net.Server, port: number): Effect.Effect<number, FaultProxyError> =>
  Effect.async<number, FaultProxyError>((resume) => {
    const onError = (error: Error) => {
      server.off("listening", onListening)
      resume(Effect.fail(new FaultProxyError({ reason: `cannot listen on 127.0.0.1:${port} (${error.message})` })))
    }
    const onListening = () => {
      server.off("error", onError)
      const address = server.address()
      resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : port))
    }
    server.once("error", onError)
    server.once("listening", onListening)
    server.listen(port, "127.0.0.1")
  })

const closeServer = (server: Net.Server, state: State): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    for (const connection of state.connections) connection.destroy()
    if (!server.listening) return resume(Effect.void)
    server.close(() => resume(Effect.void))
  })

/**
 * Starts a proxy on 127.0.0.1 (an ephemeral port) in front of `upstream`, passing everything through until a
 * fault is set. Closed, with every socket and timer, when the scope closes.
 *
 * @example
 * ```ts
 * import { FakeZapierServer, FaultProxy } from "@effect-zapier/testing"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const server = yield* FakeZapierServer.FakeZapierServer
 *   const proxy = yield* FaultProxy.make({ upstream: server.apiUrl })
 *   yield* proxy.setFault(FaultProxy.truncate(200))
 * }).pipe(Effect.scoped)
 * ```
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Service, FaultProxyError, Scope.Scope> =>
  Effect.gen(function* () {
    const state: State = {
      upstream: yield* parseUpstream(options.upstream),
      counters: {
        connections: 0,
        bytesFromClient: 0,
        bytesToUpstream: 0,
        bytesFromUpstream: 0,
        bytesToClient: 0,
        faults: {
          PassThrough: 0,
          Latency: 0,
          Hang: 0,
          ResetBeforeRequest: 0,
          ResetAfterRequest: 0,
          Truncate: 0,
          SlowBody: 0,
          AcceptAndClose: 0,
          Refuse: 0
        }
      },
      connections: new Set(),
      byOrdinal: new Map(),
      waiters: new Set(),
      current: passThrough
    }
    const server = Net.createServer((socket) => {
      const ordinal = ++state.counters.connections
      new Connection(state, socket, state.byOrdinal.get(ordinal))
    })
    server.on("error", () => {})
    const port = yield* Effect.acquireRelease(listen(server, 0), () => closeServer(server, state))
    const host = "127.0.0.1"

    const setCurrent = (fault: Fault): Effect.Effect<void, FaultProxyError> =>
      Effect.suspend(() => {
        const wasRefusing = state.current._tag === "Refuse"
        state.current = fault
        if (fault._tag === "Refuse") {
          if (wasRefusing) return Effect.void
          state.counters.faults.Refuse++
          changed(state)
          return closeServer(server, state)
        }
        return wasRefusing ? Effect.asVoid(listen(server, port)) : Effect.void
      })

    const setFault = (fault: Fault, selector?: ConnectionSelector): Effect.Effect<void, FaultProxyError> =>
      Effect.suspend(() => {
        if (selector === undefined) return setCurrent(fault)
        if (fault._tag === "Refuse") {
          return Effect.fail(
            new FaultProxyError({ reason: "Refuse applies to the listening socket, not to a connection" })
          )
        }
        const ordinals = typeof selector.connection === "number" ? [selector.connection] : selector.connection
        for (const ordinal of ordinals) state.byOrdinal.set(ordinal, fault)
        return Effect.void
      }).pipe(Effect.withSpan("FaultProxy.setFault", { attributes: { fault: fault._tag } }))

    const clear = Effect.suspend(() => {
      state.byOrdinal.clear()
      return setCurrent(passThrough)
    }).pipe(Effect.withSpan("FaultProxy.clear"))

    const snapshot = (): Stats => ({
      connections: state.counters.connections,
      open: state.connections.size,
      bytesFromClient: state.counters.bytesFromClient,
      bytesToUpstream: state.counters.bytesToUpstream,
      bytesFromUpstream: state.counters.bytesFromUpstream,
      bytesToClient: state.counters.bytesToClient,
      faults: { ...state.counters.faults }
    })
    const stats = Effect.sync(snapshot)

    const until = (predicate: (stats: Stats) => boolean): Effect.Effect<Stats> =>
      Effect.async<Stats>((resume) => {
        const check = () => {
          const now = snapshot()
          if (!predicate(now)) return false
          state.waiters.delete(check)
          resume(Effect.succeed(now))
          return true
        }
        if (check()) return
        state.waiters.add(check)
        return Effect.sync(() => {
          state.waiters.delete(check)
        })
      })

    return FaultProxy.of({ url: `http://${host}:${port}`, host, port, setFault, clear, stats, until })
  })

/**
 * The proxy as a layer (see `make`).
 *
 * @example
 * ```ts
 * import { FaultProxy } from "@effect-zapier/testing"
 *
 * const Proxy = FaultProxy.layer({ upstream: { port: 8080 } })
 * ```
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<FaultProxy, FaultProxyError> =>
  Layer.scoped(FaultProxy, make(options))
