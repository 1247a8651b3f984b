/**
 * Forged connect callbacks against a user's open attempt, on one store: what an attacker can send the victim's
 * browser to (`/zapier/callback?…` with the victim's session cookie riding along) or post as the victim's page.
 * Every forgery must be refused and leave the victim's attempt open; the victim's real callback (without `state`,
 * as Zapier's success redirect is not documented to echo it) must then complete it, once. Canaries (the Connect
 * links' tokens, the attacker's text) must appear in no error, no log line and no stored row.
 */
import { inspect } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import type { ConnectionStore } from "@effect-zapier/core/ConnectionStore"
import * as ConnectionStoreModule from "@effect-zapier/core/ConnectionStore"
import { attemptParameter, type ConnectLink, EndUser } from "@effect-zapier/core/Domain"
import * as EmbeddedActions from "@effect-zapier/core/EmbeddedActions"
import { ConnectFailed, ConnectionRequired, type StoreUnavailable } from "@effect-zapier/core/Errors"
import { FakeZapier } from "@effect-zapier/testing"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"

const { sample } = FakeZapier
export const victim = EndUser.make({ userId: "victim", tenantId: "acme" })
const attacker = EndUser.make({ userId: "attacker", tenantId: "acme" })
const REDIRECT = "https://partner.example/zapier/callback?app="
const ATTACKER_TEXT = "ATTACKER-TEXT-call-555-0100"

/** A store under test, and every row it holds as text (to look for canaries). */
export interface StoreUnderTest {
  readonly layer: Layer.Layer<ConnectionStore, StoreUnavailable>
  readonly rows: Effect.Effect<string>
}

/** What one run of the suite measured, for the figures. */
export interface Figures {
  readonly forgedTried: number
  readonly forgedAccepted: number
  readonly canaryChecks: number
  readonly leaks: number
}

export const figures: Array<{ readonly store: string } & Figures> = []

const tokenOf = (link: ConnectLink) => new URL(link.url).searchParams.get("token") ?? ""

/**
 * Runs `effect` forked and moves the TestClock on (a second at a time) until it ends: the re-checks of a connection
 * id sleep on the TestClock between real store and Zapier I/O, so the clock is moved only while the fiber is still
 * running. The give-up is real time (30 s, a hang), not a number of steps: a step taken while the fiber is still
 * in its I/O wakes nothing, and a busy machine wastes many, which a fixed count (20) would run out of and leave the
 * fiber asleep for good.
 */
const settled = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done)) break
      // a moment of real time for the fiber's I/O, then a virtual second for its sleeps
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)))
      yield* TestClock.adjust("1 second")
    }
    return yield* Fiber.join(fiber)
  })

export const forgerySuite = (name: string, store: Effect.Effect<StoreUnderTest, never, Scope.Scope>) =>
  describe(`forged connect callbacks on ${name}`, () => {
    it.scoped(
      "every forgery is refused and leaves the victim's attempt open; the real callback completes once",
      () =>
        Effect.gen(function* () {
          const lines: Array<string> = []
          const capture = Logger.replace(
            Logger.defaultLogger,
            Logger.make(({ message, annotations, cause }) => {
              lines.push(inspect({ message, annotations: [...annotations], cause: Cause.pretty(cause) }, { depth: 9 }))
            })
          )
          const { layer, rows } = yield* store
          // Every log line of the test's fiber (and its children), at every level, for the canary check.
          yield* Layer.build(Layer.merge(capture, Logger.minimumLogLevel(LogLevel.All)))
          const zapier = yield* Layer.build(FakeZapier.layer(FakeZapier.sampleSeed))
          const control = Context.get(zapier, FakeZapier.FakeZapier)
          const context = yield* Layer.build(
            EmbeddedActions.layer.pipe(Layer.provideMerge(layer), Layer.provide(Layer.succeedContext(zapier)))
          )
          const actions = Context.get(context, EmbeddedActions.EmbeddedActions)
          const storeService = Context.get(context, ConnectionStoreModule.ConnectionStore)
          const withLogs = <A, E>(effect: Effect.Effect<A, E>) => effect

          const linkFor = (user: EndUser, app: typeof sample.slack) =>
            Effect.gen(function* () {
              const failed = yield* Effect.flip(
                withLogs(actions.ensureConnection(user, app, { redirectUri: `${REDIRECT}${app}` }))
              )
              if (!(failed instanceof ConnectionRequired) || failed.link === undefined) {
                return assert.fail(`expected ConnectionRequired, got ${failed._tag}`)
              }
              return failed.link
            })

          // The attacker connects on their own (a real connection id of theirs), and opens an attempt of theirs.
          const attackerLink = yield* linkFor(attacker, sample.slack)
          const attackerConnection = yield* withLogs(
            actions.completeConnection(attacker, sample.slack, yield* control.approveConnect(attackerLink))
          )
          const attackerOpen = yield* linkFor(attacker, sample.sheets)
          const theirs = attackerOpen.state ?? ""
          // The victim's open attempt.
          const victimLink = yield* linkFor(victim, sample.slack)
          const mine = victimLink.state ?? ""
          const stolen = attackerConnection.id

          const forgeries: ReadonlyArray<readonly [string, EndUser, typeof sample.slack, unknown, string]> = [
            [
              "error link, no proof",
              victim,
              sample.slack,
              { error: "access_denied", error_description: ATTACKER_TEXT },
              "unbound"
            ],
            [
              "error link, guessed state",
              victim,
              sample.slack,
              { error: "access_denied", state: "guessed-state-0000" },
              "state_mismatch"
            ],
            [
              "success link, no proof",
              victim,
              sample.slack,
              { authentication_id: stolen, service: "SlackAPI" },
              "unbound"
            ],
            [
              "success link, guessed state",
              victim,
              sample.slack,
              { authentication_id: stolen, state: "guessed-state-1111" },
              "state_mismatch"
            ],
            [
              "success link, guessed attempt",
              victim,
              sample.slack,
              { authentication_id: stolen, [attemptParameter]: "guess" },
              "state_mismatch"
            ],
            [
              "success link, the attacker's own attempt",
              victim,
              sample.slack,
              { authentication_id: stolen, [attemptParameter]: theirs },
              "other_user"
            ],
            [
              "success link, the victim's attempt, the attacker's connection",
              victim,
              sample.slack,
              { authentication_id: stolen, [attemptParameter]: mine },
              "connection_not_found"
            ],
            [
              "popup success without state, the attacker's connection",
              victim,
              sample.slack,
              { type: "authenticationSuccess", authId: stolen },
              "connection_not_found"
            ],
            [
              "popup error without state",
              victim,
              sample.slack,
              { type: "authenticationError", error: ATTACKER_TEXT },
              "unbound"
            ],
            [
              "state and attempt that disagree",
              victim,
              sample.slack,
              { authentication_id: stolen, state: mine, [attemptParameter]: theirs },
              "state_mismatch"
            ],
            [
              "the victim's attempt for another app",
              victim,
              sample.sheets,
              { authentication_id: stolen, [attemptParameter]: mine },
              "other_app"
            ],
            [
              "the victim's attempt in the attacker's session",
              attacker,
              sample.slack,
              { error: "access_denied", [attemptParameter]: mine },
              "other_user"
            ],
            [
              "an oversize value",
              victim,
              sample.slack,
              { authentication_id: "1", [attemptParameter]: "x".repeat(600) },
              "malformed"
            ]
          ]
          const refusals: Array<unknown> = []
          let accepted = 0
          for (const [what, user, app, callback, reason] of forgeries) {
            const outcome = yield* settled(Effect.either(withLogs(actions.completeConnection(user, app, callback))))
            if (Either.isRight(outcome)) {
              accepted++
              continue
            }
            refusals.push(outcome.left)
            assert.strictEqual(
              outcome.left instanceof ConnectFailed ? outcome.left.reason : outcome.left._tag,
              reason,
              what
            )
            const attempt = Option.getOrThrow(yield* storeService.findAttempt(mine))
            assert.isFalse(attempt.closed, `${what}: the victim's attempt is still open`)
          }
          assert.strictEqual(accepted, 0)
          assert.isTrue(Option.isNone(yield* storeService.get(victim, sample.slack)))

          // The victim's real callback, as the browser brings it back without `state`: completes, once.
          const approved = yield* control.approveConnect(victimLink)
          const { state: _echoed, ...withoutState } = approved as Record<string, string>
          assert.strictEqual(withoutState[attemptParameter], mine, "the attempt key came back through the redirect_uri")
          const connection = yield* withLogs(actions.completeConnection(victim, sample.slack, withoutState))
          assert.strictEqual(
            Option.getOrThrow(yield* storeService.get(victim, sample.slack)).connectionId,
            connection.id
          )
          const replay = yield* Effect.flip(withLogs(actions.completeConnection(victim, sample.slack, withoutState)))
          assert.strictEqual(replay instanceof ConnectFailed ? replay.reason : replay._tag, "replay")
          refusals.push(replay)
          assert.strictEqual(
            Option.getOrThrow(yield* storeService.get(attacker, sample.slack)).connectionId,
            attackerConnection.id
          )

          // Canaries: the links' tokens and the attacker's text, in every printed form of every refusal, every log
          // line, and every stored row.
          const canaries = [tokenOf(attackerLink), tokenOf(attackerOpen), tokenOf(victimLink), ATTACKER_TEXT]
          for (const canary of canaries.slice(0, 3)) assert.isAtLeast(canary.length, 16, "a real token to look for")
          const stored = yield* rows
          assert.include(stored, mine, "the rows were read")
          const sinks = [
            ...refusals.flatMap((e) => [
              String(e),
              JSON.stringify(e),
              inspect(e, { depth: Infinity }),
              Cause.pretty(Cause.fail(e)),
              e instanceof Error ? e.message : ""
            ]),
            ...lines,
            stored
          ]
          let leaks = 0
          for (const sink of sinks) for (const canary of canaries) if (sink.includes(canary)) leaks++
          assert.strictEqual(leaks, 0)
          figures.push({
            store: name,
            forgedTried: forgeries.length + 1,
            forgedAccepted: accepted,
            canaryChecks: sinks.length * canaries.length,
            leaks
          })
        }),
      120_000
    )
  })
