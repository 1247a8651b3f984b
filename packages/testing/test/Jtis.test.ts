import { assert, describe, it } from "@effect/vitest"
import { JtiRegistry } from "../src/internal/model/jtis.js"

// The token endpoint's replay check (a JWT's jti is refused again until that JWT expires), on the model's clock:
// `now` in epoch millis, `exp` in epoch seconds as in the JWT.
describe("the fake's jti replay check", () => {
  it("refuses a jti used again before its JWT expires, and forgets it once expired", () => {
    const jtis = new JtiRegistry()
    assert.isTrue(jtis.use("a", 300, 0))
    assert.isFalse(jtis.use("a", 300, 1_000))
    assert.isFalse(jtis.use("a", 600, 299_999))
    // Expired at exp: the jti may be used again, with its new JWT's lifetime.
    assert.isTrue(jtis.use("a", 600, 300_000))
    assert.isFalse(jtis.use("a", 600, 599_999))
    assert.isTrue(jtis.use("b", 600, 599_999))
  })

  it("forgets a jti at its own exp even when an entry before it lives longer", () => {
    const jtis = new JtiRegistry()
    assert.isTrue(jtis.use("long", 300, 0))
    assert.isTrue(jtis.use("short", 10, 0))
    assert.isFalse(jtis.use("short", 10, 9_999))
    assert.isTrue(jtis.use("short", 20, 10_000))
    assert.isFalse(jtis.use("long", 300, 10_000))
    // Past both: the re-used "short" (exp 20) and "long" are gone.
    assert.isTrue(jtis.use("c", 400, 300_000))
    assert.strictEqual(jtis.size, 1)
    assert.isTrue(jtis.use("short", 400, 300_000))
  })

  it("holds only the jtis of the last lifetime, however many exchanges were made", () => {
    const jtis = new JtiRegistry()
    // 100,000 exchanges, one every 100 ms, each JWT living 300 s: ~3,000 are within a lifetime at any time.
    let most = 0
    let refused = 0
    for (let i = 0; i < 100_000; i++) {
      const now = i * 100
      if (!jtis.use(`jti-${i}`, Math.floor(now / 1000) + 300, now)) refused++
      most = Math.max(most, jtis.size)
    }
    assert.strictEqual(refused, 0)
    assert.isAtMost(most, 3_010)
    assert.isAtLeast(jtis.size, 2_990)
    // A replay of a recent one is still refused.
    assert.isFalse(jtis.use("jti-99999", 10_299, 9_999_900))
  })
})
