/**
 * The behavioural suite every `ConnectionStore` must pass: core's `layerMemory` is the reference, and the SQLite and
 * PostgreSQL stores run the very same tests. `storeSuite` gets a fresh, empty store per test; `fleetSuite` gets two
 * handles on one store's data (two "backends") to prove what a fleet relies on.
 */
import { assert, describe, it } from "@effect/vitest"
import type { AttemptRecord, Service } from "@effect-zapier/core/ConnectionStore"
import { ConnectAttempt, ConnectionStore } from "@effect-zapier/core/ConnectionStore"
import { AppId, ConnectionId, EndUser } from "@effect-zapier/core/Domain"
import type { StoreUnavailable } from "@effect-zapier/core/Errors"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"

export const t0 = 1_700_000_000_123 // a realistic instant with milliseconds, to prove they survive

export const alice = EndUser.make({ userId: "alice", tenantId: "acme" })
export const bob = EndUser.make({ userId: "bob", tenantId: "acme" })
/** Same user id as alice, other tenant. */
export const aliceElsewhere = EndUser.make({ userId: "alice", tenantId: "globex" })
export const slack = AppId.make("SlackCLIAPI")
export const gmail = AppId.make("GoogleMailV2CLIAPI")
export const cid = (s: string) => ConnectionId.make(s)

export const millis = (d: DateTime.Utc) => DateTime.toEpochMillis(d)

export const attempt = (
  user: EndUser,
  app: AppId,
  state: string,
  openedAt: number,
  expiresInMillis = 10 * 60 * 1000,
  reconnect?: ConnectionId
) =>
  ConnectAttempt.make({
    user,
    app,
    state,
    ...(reconnect !== undefined ? { reconnect } : {}),
    openedAt: DateTime.unsafeMake(openedAt),
    expiresAt: DateTime.unsafeMake(openedAt + expiresInMillis)
  })

/** Every field of a record, as plain data (times in epoch millis). */
export const plain = (record: AttemptRecord) => ({
  state: record.attempt.state,
  tenantId: record.attempt.user.tenantId,
  userId: record.attempt.user.userId,
  app: record.attempt.app,
  reconnect: record.attempt.reconnect,
  openedAt: millis(record.attempt.openedAt),
  expiresAt: millis(record.attempt.expiresAt),
  closed: record.closed
})

const now = Effect.map(TestClock.currentTimeMillis, (n) => n)

/**
 * The behavioural suite. `layer` must give a fresh, empty store each time it is built.
 */
export const storeSuite = (name: string, layer: Layer.Layer<ConnectionStore, StoreUnavailable>) =>
  describe(name, () => {
    const withStore = <A, E>(f: (store: Service) => Effect.Effect<A, E>) =>
      Effect.gen(function* () {
        yield* TestClock.setTime(t0)
        return yield* f(yield* ConnectionStore)
      }).pipe(Effect.provide(layer))

    describe("connections", () => {
      it.effect("get is empty for a key never stored", () =>
        withStore((store) =>
          Effect.gen(function* () {
            assert.isTrue(Option.isNone(yield* store.get(alice, slack)))
          })
        )
      )

      it.effect("set stores the connection; storedAt = verifiedAt = now, to the millisecond", () =>
        withStore((store) =>
          Effect.gen(function* () {
            const stored = yield* store.set(alice, slack, cid("c-1"))
            assert.strictEqual(stored.connectionId, "c-1")
            assert.strictEqual(millis(stored.storedAt), t0)
            assert.strictEqual(millis(stored.verifiedAt), t0)
            const got = Option.getOrThrow(yield* store.get(alice, slack))
            assert.deepStrictEqual(
              { id: got.connectionId, storedAt: millis(got.storedAt), verifiedAt: millis(got.verifiedAt) },
              { id: "c-1", storedAt: t0, verifiedAt: t0 }
            )
          })
        )
      )

      it.effect("set of the same id keeps storedAt and moves verifiedAt", () =>
        withStore((store) =>
          Effect.gen(function* () {
            yield* store.set(alice, slack, cid("c-1"))
            yield* TestClock.adjust("90 minutes")
            const later = yield* now
            const stored = yield* store.set(alice, slack, cid("c-1"))
            assert.strictEqual(millis(stored.storedAt), t0)
            assert.strictEqual(millis(stored.verifiedAt), later)
            const got = Option.getOrThrow(yield* store.get(alice, slack))
            assert.strictEqual(millis(got.storedAt), t0)
            assert.strictEqual(millis(got.verifiedAt), later)
          })
        )
      )

      it.effect("set of another id replaces it (last writer wins) and restarts storedAt", () =>
        withStore((store) =>
          Effect.gen(function* () {
            yield* store.set(alice, slack, cid("c-1"))
            yield* TestClock.adjust("1 hour")
            const later = yield* now
            const stored = yield* store.set(alice, slack, cid("c-2"))
            assert.strictEqual(stored.connectionId, "c-2")
            assert.strictEqual(millis(stored.storedAt), later)
            const got = Option.getOrThrow(yield* store.get(alice, slack))
            assert.strictEqual(got.connectionId, "c-2")
            assert.strictEqual(millis(got.storedAt), later)
            assert.strictEqual(millis(got.verifiedAt), later)
          })
        )
      )

      it.effect("the key is (tenant, user, app): no key sees another's connection, whatever the ids contain", () =>
        withStore((store) =>
          Effect.gen(function* () {
            const users = [
              alice,
              bob,
              aliceElsewhere,
              EndUser.make({ tenantId: "a", userId: "b,c" }),
              EndUser.make({ tenantId: "a,b", userId: "c" }),
              EndUser.make({ tenantId: `it's "quoted"`, userId: "ünïcødé ✓" }),
              EndUser.make({ tenantId: "x'); DROP TABLE t; --", userId: "%_" })
            ]
            const apps = [slack, gmail]
            for (const [i, user] of users.entries()) {
              for (const [j, app] of apps.entries()) yield* store.set(user, app, cid(`c-${i}-${j}`))
            }
            for (const [i, user] of users.entries()) {
              for (const [j, app] of apps.entries()) {
                const got = yield* store.get(user, app)
                assert.strictEqual(Option.getOrThrow(got).connectionId, `c-${i}-${j}`)
              }
            }
            assert.isTrue(Option.isNone(yield* store.get(EndUser.make({ tenantId: "a", userId: "b" }), slack)))
          })
        )
      )

      it.effect("remove deletes only that key, and removing a missing key succeeds", () =>
        withStore((store) =>
          Effect.gen(function* () {
            yield* store.set(alice, slack, cid("c-1"))
            yield* store.set(alice, gmail, cid("c-2"))
            yield* store.set(bob, slack, cid("c-3"))
            yield* store.remove(alice, slack)
            yield* store.remove(alice, slack)
            yield* store.remove(aliceElsewhere, gmail)
            assert.isTrue(Option.isNone(yield* store.get(alice, slack)))
            assert.strictEqual(Option.getOrThrow(yield* store.get(alice, gmail)).connectionId, "c-2")
            assert.strictEqual(Option.getOrThrow(yield* store.get(bob, slack)).connectionId, "c-3")
            const again = yield* store.set(alice, slack, cid("c-1"))
            assert.strictEqual(millis(again.storedAt), t0)
          })
        )
      )

      it.effect("concurrent sets of one key all succeed and leave one of the written values", () =>
        withStore((store) =>
          Effect.gen(function* () {
            const ids = Array.from({ length: 12 }, (_, i) => cid(`c-${i}`))
            const results = yield* Effect.forEach(ids, (id) => store.set(alice, slack, id), {
              concurrency: "unbounded"
            })
            assert.deepStrictEqual(
              results.map((r) => r.connectionId),
              ids
            )
            const got = Option.getOrThrow(yield* store.get(alice, slack))
            assert.include(ids as ReadonlyArray<string>, got.connectionId)
            assert.strictEqual(millis(got.storedAt), t0)
          })
        )
      )
    })

    describe("expiry marks", () => {
      const expiresAt = DateTime.unsafeMake(t0 + 7 * 24 * 60 * 60 * 1000 + 456)

      it.effect("markExpiring marks every stored connection with that id (to the millisecond), none other", () =>
        withStore((store) =>
          Effect.gen(function* () {
            yield* store.set(alice, slack, cid("c-1"))
            yield* store.set(aliceElsewhere, slack, cid("c-1"))
            yield* store.set(bob, slack, cid("c-2"))
            assert.isUndefined(Option.getOrThrow(yield* store.get(alice, slack)).expiresAt)
            assert.strictEqual(yield* store.markExpiring(cid("c-1"), expiresAt), 2)
            for (const user of [alice, aliceElsewhere]) {
              const got = Option.getOrThrow(yield* store.get(user, slack))
              assert.strictEqual(millis(got.expiresAt!), millis(expiresAt))
              assert.strictEqual(millis(got.storedAt), t0)
            }
            assert.isUndefined(Option.getOrThrow(yield* store.get(bob, slack)).expiresAt)
            assert.strictEqual(yield* store.markExpiring(cid("not-stored"), expiresAt), 0)
          })
        )
      )

      it.effect("re-verifying the same id keeps the mark; a renewal or another id clears it", () =>
        withStore((store) =>
          Effect.gen(function* () {
            yield* store.set(alice, slack, cid("c-1"))
            yield* store.markExpiring(cid("c-1"), expiresAt)
            yield* TestClock.adjust("1 hour")
            const again = yield* store.set(alice, slack, cid("c-1"))
            assert.strictEqual(millis(again.expiresAt!), millis(expiresAt))
            assert.strictEqual(millis(Option.getOrThrow(yield* store.get(alice, slack)).expiresAt!), millis(expiresAt))
            const renewed = yield* store.set(alice, slack, cid("c-1"), { renewed: true })
            assert.isUndefined(renewed.expiresAt)
            assert.strictEqual(millis(renewed.storedAt), t0)
            assert.isUndefined(Option.getOrThrow(yield* store.get(alice, slack)).expiresAt)

            yield* store.markExpiring(cid("c-1"), expiresAt)
            const other = yield* store.set(alice, slack, cid("c-2"))
            assert.isUndefined(other.expiresAt)
            assert.isUndefined(Option.getOrThrow(yield* store.get(alice, slack)).expiresAt)
          })
        )
      )
    })

    describe("connect attempts", () => {
      it.effect("openAttempt then findAttempt returns every field, open; an unknown state is none", () =>
        withStore((store) =>
          Effect.gen(function* () {
            const fresh = attempt(alice, slack, "state-1", t0)
            const reconnect = attempt(bob, gmail, "state-2", t0 + 5, 60_000, cid("c-old"))
            yield* store.openAttempt(fresh)
            yield* store.openAttempt(reconnect)
            assert.deepStrictEqual(plain(Option.getOrThrow(yield* store.findAttempt("state-1"))), {
              state: "state-1",
              tenantId: "acme",
              userId: "alice",
              app: slack,
              reconnect: undefined,
              openedAt: t0,
              expiresAt: t0 + 600_000,
              closed: false
            })
            const found = Option.getOrThrow(yield* store.findAttempt("state-2"))
            assert.deepStrictEqual(plain(found), {
              state: "state-2",
              tenantId: "acme",
              userId: "bob",
              app: gmail,
              reconnect: cid("c-old"),
              openedAt: t0 + 5,
              expiresAt: t0 + 5 + 60_000,
              closed: false
            })
            assert.isTrue(found.attempt.user instanceof EndUser)
            assert.isTrue(Option.isNone(yield* store.findAttempt("state-3")))
            assert.isTrue(Option.isNone(yield* store.findAttempt("STATE-1")))
          })
        )
      )

      it.effect("closeAttempt closes once: true, then false; an unknown state is false", () =>
        withStore((store) =>
          Effect.gen(function* () {
            yield* store.openAttempt(attempt(alice, slack, "state-1", t0))
            assert.isTrue(yield* store.closeAttempt("state-1"))
            assert.isFalse(yield* store.closeAttempt("state-1"))
            assert.isFalse(yield* store.closeAttempt("nope"))
            const found = Option.getOrThrow(yield* store.findAttempt("state-1"))
            assert.isTrue(found.closed)
            assert.strictEqual(millis(found.attempt.expiresAt), t0 + 600_000)
          })
        )
      )

      it.effect("closeAttempt does not care about expiry (the caller checks it)", () =>
        withStore((store) =>
          Effect.gen(function* () {
            yield* store.openAttempt(attempt(alice, slack, "state-1", t0, 1_000))
            yield* TestClock.adjust("1 hour")
            assert.isTrue(yield* store.closeAttempt("state-1"))
          })
        )
      )

      it.effect("concurrent closeAttempt: exactly one caller closes it", () =>
        withStore((store) =>
          Effect.gen(function* () {
            yield* store.openAttempt(attempt(alice, slack, "state-1", t0))
            const results = yield* Effect.all(
              Array.from({ length: 10 }, () => store.closeAttempt("state-1")),
              { concurrency: "unbounded" }
            )
            assert.strictEqual(results.filter((closed) => closed).length, 1)
          })
        )
      )

      it.effect("latestAttempt is the newest of that tenant, user and app, open or closed", () =>
        withStore((store) =>
          Effect.gen(function* () {
            yield* store.openAttempt(attempt(alice, slack, "a-old", t0))
            yield* store.openAttempt(attempt(alice, slack, "a-new", t0 + 1_000))
            yield* store.openAttempt(attempt(alice, gmail, "a-gmail", t0 + 2_000))
            yield* store.openAttempt(attempt(aliceElsewhere, slack, "a-globex", t0 + 3_000))
            yield* store.openAttempt(attempt(bob, slack, "b", t0 + 4_000))
            // opened later but with an older openedAt: the newest is by openedAt, not by insertion
            yield* store.openAttempt(attempt(alice, slack, "a-backdated", t0 - 1_000))
            assert.strictEqual(Option.getOrThrow(yield* store.latestAttempt(alice, slack)).attempt.state, "a-new")
            assert.strictEqual(Option.getOrThrow(yield* store.latestAttempt(alice, gmail)).attempt.state, "a-gmail")
            assert.strictEqual(
              Option.getOrThrow(yield* store.latestAttempt(aliceElsewhere, slack)).attempt.state,
              "a-globex"
            )
            yield* store.closeAttempt("a-new")
            const latest = Option.getOrThrow(yield* store.latestAttempt(alice, slack))
            assert.deepStrictEqual([latest.attempt.state, latest.closed], ["a-new", true])
            assert.isTrue(Option.isNone(yield* store.latestAttempt(bob, gmail)))
            assert.isTrue(
              Option.isNone(yield* store.latestAttempt(EndUser.make({ tenantId: "x", userId: "y" }), slack))
            )
          })
        )
      )

      it.effect("latestAttempt breaks a tie in openedAt by the attempt opened last", () =>
        withStore((store) =>
          Effect.gen(function* () {
            yield* store.openAttempt(attempt(alice, slack, "tie-1", t0))
            yield* store.openAttempt(attempt(alice, slack, "tie-2", t0))
            assert.strictEqual(Option.getOrThrow(yield* store.latestAttempt(alice, slack)).attempt.state, "tie-2")
            yield* store.openAttempt(attempt(alice, slack, "tie-0", t0))
            assert.strictEqual(Option.getOrThrow(yield* store.latestAttempt(alice, slack)).attempt.state, "tie-0")
            // re-opening a known state replaces it in place: it does not become the last opened
            yield* store.closeAttempt("tie-1")
            yield* store.openAttempt(attempt(alice, slack, "tie-1", t0))
            assert.strictEqual(Option.getOrThrow(yield* store.latestAttempt(alice, slack)).attempt.state, "tie-0")
            // many ties, opened in an order unrelated to their states
            const states = Array.from({ length: 40 }, (_, i) => `many-${(i * 17) % 40}`)
            for (const state of states) yield* store.openAttempt(attempt(bob, gmail, state, t0))
            assert.strictEqual(Option.getOrThrow(yield* store.latestAttempt(bob, gmail)).attempt.state, states[39])
          })
        )
      )

      it.effect("opening an attempt with a state already known replaces the record and reopens it", () =>
        withStore((store) =>
          Effect.gen(function* () {
            yield* store.openAttempt(attempt(alice, slack, "state-1", t0))
            assert.isTrue(yield* store.closeAttempt("state-1"))
            yield* store.openAttempt(attempt(bob, gmail, "state-1", t0 + 10, 5_000, cid("c-9")))
            assert.deepStrictEqual(plain(Option.getOrThrow(yield* store.findAttempt("state-1"))), {
              state: "state-1",
              tenantId: "acme",
              userId: "bob",
              app: gmail,
              reconnect: cid("c-9"),
              openedAt: t0 + 10,
              expiresAt: t0 + 10 + 5_000,
              closed: false
            })
            assert.isTrue(Option.isNone(yield* store.latestAttempt(alice, slack)))
            assert.isTrue(yield* store.closeAttempt("state-1"))
          })
        )
      )

      it.effect("attempts are pruned 24 h after they expire, when another attempt is opened", () =>
        withStore((store) =>
          Effect.gen(function* () {
            const day = 24 * 60 * 60 * 1000
            yield* store.openAttempt(attempt(alice, slack, "short", t0, 10 * 60 * 1000))
            yield* store.openAttempt(attempt(alice, gmail, "long", t0, 2 * 60 * 60 * 1000))
            yield* store.closeAttempt("long")
            // 1 ms before `short` is due: still kept, so a late replay is still told apart from a forgery
            yield* TestClock.setTime(t0 + 10 * 60 * 1000 + day - 1)
            yield* store.openAttempt(attempt(bob, slack, "other-1", t0 + 10 * 60 * 1000 + day - 1))
            assert.isTrue(Option.isSome(yield* store.findAttempt("short")))
            yield* TestClock.adjust("1 millis")
            yield* store.openAttempt(attempt(bob, slack, "other-2", t0 + 10 * 60 * 1000 + day))
            assert.isTrue(Option.isNone(yield* store.findAttempt("short")))
            assert.isTrue(Option.isNone(yield* store.latestAttempt(alice, slack)))
            const long = Option.getOrThrow(yield* store.findAttempt("long"))
            assert.isTrue(long.closed)
            assert.isTrue(Option.isSome(yield* store.findAttempt("other-1")))
            // the attempt being opened is never pruned, even when it is already past retention
            yield* store.openAttempt(attempt(bob, gmail, "ancient", t0 - 3 * day))
            assert.isTrue(Option.isSome(yield* store.findAttempt("ancient")))
          })
        )
      )

      it.effect("attempts are pruned when they are due, whatever the order they were opened in", () =>
        withStore((store) =>
          Effect.gen(function* () {
            const day = 24 * 60 * 60 * 1000
            const hour = 60 * 60 * 1000
            // opened in an order unrelated to their expiry: 3 h, 1 h, 2 h, then 1 h again
            yield* store.openAttempt(attempt(alice, slack, "three", t0, 3 * hour))
            yield* store.openAttempt(attempt(alice, slack, "one", t0, hour))
            yield* store.openAttempt(attempt(alice, slack, "two", t0, 2 * hour))
            yield* store.openAttempt(attempt(bob, slack, "one-again", t0, hour))
            // "two" is opened again with a longer life: the new record's expiry counts, not the first one's
            yield* store.openAttempt(attempt(alice, slack, "two", t0, 4 * hour))
            const kept = (states: ReadonlyArray<string>) =>
              Effect.map(
                Effect.forEach(states, (state) => store.findAttempt(state)),
                (found) => states.filter((_, i) => Option.isSome(found[i]!))
              )
            const all = ["three", "one", "two", "one-again"]
            for (const [at, expected] of [
              [day + hour, ["three", "two"]],
              [day + 3 * hour, ["two"]],
              [day + 4 * hour, []]
            ] as const) {
              yield* TestClock.setTime(t0 + at)
              yield* store.openAttempt(attempt(bob, gmail, `probe-${at}`, t0 + at))
              assert.deepStrictEqual(yield* kept(all), [...expected])
            }
          })
        )
      )

      it.effect("writes from many fibers at once are all kept", () =>
        withStore((store) =>
          Effect.gen(function* () {
            const n = 40
            const users = Array.from({ length: n }, (_, i) => EndUser.make({ userId: `u-${i}`, tenantId: "acme" }))
            yield* Effect.forEach(
              users,
              (user, i) =>
                Effect.all(
                  [
                    store.openAttempt(attempt(user, slack, `s-${i}`, t0)),
                    store.set(user, slack, cid(`c-${i}`)),
                    store.set(user, gmail, cid(`g-${i}`)),
                    store.openAttempt(attempt(user, gmail, `g-${i}`, t0))
                  ],
                  { concurrency: "unbounded" }
                ),
              { concurrency: "unbounded" }
            )
            // then close half the attempts and remove half the gmail connections, concurrently too
            yield* Effect.forEach(
              users,
              (user, i) =>
                i % 2 === 0 ? Effect.all([store.closeAttempt(`s-${i}`), store.remove(user, gmail)]) : Effect.void,
              { concurrency: "unbounded" }
            )
            for (const [i, user] of users.entries()) {
              const s = Option.getOrThrow(yield* store.findAttempt(`s-${i}`))
              assert.strictEqual(s.closed, i % 2 === 0, `s-${i}`)
              assert.isFalse(Option.getOrThrow(yield* store.findAttempt(`g-${i}`)).closed, `g-${i}`)
              assert.strictEqual(Option.getOrThrow(yield* store.get(user, slack)).connectionId, cid(`c-${i}`))
              const gmailConnection = yield* store.get(user, gmail)
              if (i % 2 === 0) assert.isTrue(Option.isNone(gmailConnection), `g-${i} removed`)
              else assert.strictEqual(Option.getOrThrow(gmailConnection).connectionId, cid(`g-${i}`))
            }
          })
        )
      )
    })
  })

/**
 * Two handles on one store's data: what two backends of a fleet see. `backends` is built per test.
 */
export const fleetSuite = (
  name: string,
  backends: Effect.Effect<readonly [Service, Service], StoreUnavailable, Scope.Scope>,
  options?: { readonly rounds?: number }
) =>
  describe(name, () => {
    const rounds = options?.rounds ?? 20
    const withBackends = <A, E>(f: (one: Service, two: Service) => Effect.Effect<A, E>) =>
      Effect.gen(function* () {
        yield* TestClock.setTime(t0)
        const [one, two] = yield* backends
        return yield* f(one, two)
      }).pipe(Effect.scoped)

    it.effect("an attempt opened on one backend is completed on the other; a replay on the first fails", () =>
      withBackends((one, two) =>
        Effect.gen(function* () {
          yield* one.openAttempt(attempt(alice, slack, "state-1", t0, 60_000, cid("c-old")))
          const seen = Option.getOrThrow(yield* two.latestAttempt(alice, slack))
          assert.deepStrictEqual(
            plain(seen),
            plain({ attempt: attempt(alice, slack, "state-1", t0, 60_000, cid("c-old")), closed: false })
          )
          assert.isTrue(yield* two.closeAttempt("state-1"))
          yield* two.set(alice, slack, cid("c-old"))
          assert.isFalse(yield* one.closeAttempt("state-1"))
          assert.isTrue(Option.getOrThrow(yield* one.findAttempt("state-1")).closed)
          assert.strictEqual(Option.getOrThrow(yield* one.get(alice, slack)).connectionId, "c-old")
        })
      )
    )

    it.effect(`racing closeAttempt on two backends: exactly one wins (${rounds} rounds)`, () =>
      withBackends((one, two) =>
        Effect.gen(function* () {
          for (let round = 0; round < rounds; round++) {
            const state = `race-${round}`
            yield* (round % 2 === 0 ? one : two).openAttempt(attempt(alice, slack, state, t0 + round))
            const results = yield* Effect.all(
              [one, two, one, two].map((backend) => backend.closeAttempt(state)),
              { concurrency: "unbounded" }
            )
            assert.strictEqual(results.filter((closed) => closed).length, 1, `round ${round}: ${results}`)
          }
        })
      )
    )

    it.effect(`racing sets of one key on two backends leave one consistent row (${rounds} rounds)`, () =>
      withBackends((one, two) =>
        Effect.gen(function* () {
          for (let round = 0; round < rounds; round++) {
            yield* TestClock.adjust("1 second")
            const at = yield* now
            const [a, b] = yield* Effect.all(
              [one.set(bob, gmail, cid(`one-${round}`)), two.set(bob, gmail, cid(`two-${round}`))],
              {
                concurrency: "unbounded"
              }
            )
            assert.deepStrictEqual([a.connectionId, b.connectionId], [`one-${round}`, `two-${round}`])
            const fromOne = Option.getOrThrow(yield* one.get(bob, gmail))
            const fromTwo = Option.getOrThrow(yield* two.get(bob, gmail))
            assert.include([`one-${round}`, `two-${round}`], fromOne.connectionId)
            assert.deepStrictEqual(
              [fromTwo.connectionId, millis(fromTwo.storedAt), millis(fromTwo.verifiedAt)],
              [fromOne.connectionId, at, at]
            )
          }
        })
      )
    )

    it.effect("racing sets of the same id on two backends keep the first storedAt", () =>
      withBackends((one, two) =>
        Effect.gen(function* () {
          yield* one.set(alice, slack, cid("c-1"))
          for (let round = 0; round < rounds; round++) {
            yield* TestClock.adjust("1 minute")
            const at = yield* now
            const results = yield* Effect.all([one.set(alice, slack, cid("c-1")), two.set(alice, slack, cid("c-1"))], {
              concurrency: "unbounded"
            })
            for (const r of results) assert.deepStrictEqual([millis(r.storedAt), millis(r.verifiedAt)], [t0, at])
          }
          const got = Option.getOrThrow(yield* two.get(alice, slack))
          assert.strictEqual(millis(got.storedAt), t0)
        })
      )
    )
  })
