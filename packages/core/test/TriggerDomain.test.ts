import { assert, describe, it } from "@effect/vitest"
import { Domain, Errors } from "@effect-zapier/core"
import { Duration, Schema } from "effect"

const inbox = Domain.InboxId.make("inbox-1")

describe("Trigger Inbox domain", () => {
  it("an inbox key is at most 100 characters and not blank", () => {
    assert.isTrue(Schema.is(Domain.InboxKey)("k".repeat(100)))
    assert.isFalse(Schema.is(Domain.InboxKey)("k".repeat(101)))
    assert.isFalse(Schema.is(Domain.InboxKey)(""))
  })

  it("an authentication pause says the user must reconnect, and carries the connection", () => {
    const paused = new Errors.InboxPaused({
      inbox,
      reason: "authentication",
      app: Domain.AppId.make("slack"),
      connection: Domain.ConnectionId.make("c-1")
    })
    assert.isTrue(paused.needsReconnect)
    assert.include(paused.message, "re-authorized through Connect UI")
    assert.include(paused.message, "c-1")
    assert.isTrue(Errors.isZapierError(paused))
    const revoked = new Errors.InboxPaused({ inbox, reason: "authentication_access_revoked" })
    assert.isTrue(revoked.needsReconnect)
    const byUser = new Errors.InboxPaused({ inbox, reason: "user" })
    assert.isFalse(byUser.needsReconnect)
    assert.include(byUser.message, "resume it")
  })

  it("the inbox errors round-trip through the ZapierError schema", () => {
    const errors: ReadonlyArray<Errors.ZapierError> = [
      new Errors.InboxKeyConflict({ key: Domain.InboxKey.make("k") }),
      new Errors.InboxNotActive({ inbox, status: "initializing", waited: Duration.seconds(30) }),
      new Errors.LeaseExpired({ inbox, lease: Domain.LeaseId.make("l-1"), messages: [Domain.MessageId.make("m-1")] }),
      new Errors.PayloadDecodeFailed({ inbox, messageId: Domain.MessageId.make("m-9"), reason: "text is missing" })
    ]
    for (const error of errors) {
      const encoded = Schema.encodeSync(Errors.ZapierError)(error)
      const decoded = Schema.decodeUnknownSync(Errors.ZapierError)(JSON.parse(JSON.stringify(encoded)))
      assert.deepStrictEqual(decoded, error)
    }
    assert.include(errors[1]!.message, "still initializing after waiting 30s")
    assert.include(errors[3]!.message, "m-9")
  })
})
