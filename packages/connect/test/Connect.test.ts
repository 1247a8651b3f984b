/**
 * Node-side tests of the helper's input validation and message reading, with a minimal fake `window`.
 * The real-browser behaviour (popup, origins, blocking, redirect) is in Connect.browser.test.ts.
 */
import { afterEach, assert, beforeEach, describe, it, vi } from "@effect/vitest"
import {
  ATTEMPT_PARAMETER,
  CONNECT_ORIGIN,
  ConnectError,
  type ConnectPayload,
  connectRedirectUrl,
  DEFAULT_TIMEOUT_MS,
  openConnect
} from "../src/Connect.js"

const LINK = "https://connect.zapier.com/to/SlackCLIAPI?token=ct-1"

const rejection = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => assert.fail("expected a rejection"),
    (error: unknown) => error
  )

describe("connectRedirectUrl", () => {
  it("adds redirect_uri to the link, keeping its token", () => {
    const url = new URL(connectRedirectUrl(LINK, "https://app.example.com/zapier/callback?x=1"))
    assert.strictEqual(url.origin, CONNECT_ORIGIN)
    assert.strictEqual(url.pathname, "/to/SlackCLIAPI")
    assert.strictEqual(url.searchParams.get("token"), "ct-1")
    assert.strictEqual(url.searchParams.get("redirect_uri"), "https://app.example.com/zapier/callback?x=1")
  })

  it("replaces a redirect_uri already on the link, and accepts a URL or a { url } object", () => {
    const withOld = `${LINK}&redirect_uri=${encodeURIComponent("https://old.example.com/cb")}`
    const fromObject = new URL(connectRedirectUrl({ url: withOld }, new URL("https://app.example.com/cb")))
    assert.deepStrictEqual(fromObject.searchParams.getAll("redirect_uri"), ["https://app.example.com/cb"])
    const fromUrl = new URL(connectRedirectUrl(new URL(LINK), "http://127.0.0.1:8080/cb"))
    assert.strictEqual(fromUrl.searchParams.get("redirect_uri"), "http://127.0.0.1:8080/cb")
  })

  it("carries the link's attempt key into the new redirect URI (its redirect_uri's connect_attempt, else its state)", () => {
    const minted = `${LINK}&state=st-9&redirect_uri=${encodeURIComponent("https://app.example.com/cb?app=slack&connect_attempt=st-9")}`
    const moved = new URL(connectRedirectUrl(minted, "https://app.example.com/zapier/callback?app=slack"))
    const callback = new URL(moved.searchParams.get("redirect_uri") ?? "")
    assert.strictEqual(callback.searchParams.get("app"), "slack")
    assert.strictEqual(callback.searchParams.get(ATTEMPT_PARAMETER), "st-9")
    const stateOnly = new URL(connectRedirectUrl(`${LINK}&state=st-3`, "https://app.example.com/cb"))
    assert.strictEqual(
      new URL(stateOnly.searchParams.get("redirect_uri") ?? "").searchParams.get(ATTEMPT_PARAMETER),
      "st-3"
    )
  })

  it("refuses links and callbacks that are not https (or http on loopback), saying what to pass", () => {
    assert.throws(() => connectRedirectUrl("http://connect.zapier.com/to/x?token=t", "https://a.example/cb"), /https/)
    assert.throws(() => connectRedirectUrl("javascript:alert(1)", "https://a.example/cb"), TypeError)
    assert.throws(() => connectRedirectUrl("/to/x?token=t", "https://a.example/cb"), /absolute URL/)
    assert.throws(() => connectRedirectUrl(LINK, "http://evil.example/cb"), /redirect URI must be an https URL/)
    // No page to resolve against in Node: a relative callback is not a URL here.
    assert.throws(() => connectRedirectUrl(LINK, "/cb"), /redirect URI is not a URL/)
    assert.throws(() => connectRedirectUrl({ url: 42 } as unknown as string, "https://a.example/cb"), /url/)
  })
})

describe("openConnect argument checks (before any window is touched)", () => {
  it("rejects a bad link, origin or timeout with a TypeError that says what to fix", async () => {
    const cases: Array<[Promise<ConnectPayload>, RegExp]> = [
      [openConnect("ftp://connect.zapier.com/to/x"), /Connect link must be an https URL/],
      [openConnect(LINK, { origin: "http://connect.zapier.com" }), /`origin` option must be an https URL/],
      [openConnect(LINK, { origin: "https://connect.zapier.com/to/x" }), /origin only/],
      [openConnect(LINK, { timeoutMs: 0 }), /timeoutMs/],
      [openConnect(LINK, { pollIntervalMs: Number.NaN }), /pollIntervalMs/]
    ]
    for (const [promise, message] of cases) {
      const error = await rejection(promise)
      assert.instanceOf(error, TypeError)
      assert.match((error as TypeError).message, message)
    }
  })

  it("an already aborted signal rejects with reason aborted without opening anything", async () => {
    const error = await rejection(openConnect(LINK, { signal: AbortSignal.abort() }))
    assert.instanceOf(error, ConnectError)
    assert.strictEqual((error as ConnectError).reason, "aborted")
    assert.strictEqual((error as ConnectError).error, undefined)
  })
})

/** A fake `window`: an EventTarget with `open` returning a fake popup, and a way to deliver messages. */
const installWindow = () => {
  const target = new EventTarget()
  const popup = {
    closed: false,
    close: vi.fn(() => {
      popup.closed = true
    })
  }
  const open = vi.fn((_url: string, _name: string, _features: string): typeof popup | null => popup)
  Object.assign(target, { open, screenX: 0, screenY: 0, outerWidth: 1280, outerHeight: 1024 })
  Object.defineProperty(globalThis, "window", { value: target, configurable: true, writable: true })
  const post = (data: unknown, origin = CONNECT_ORIGIN, source: unknown = popup) =>
    target.dispatchEvent(Object.assign(new Event("message"), { data, origin, source }))
  return { popup, open, post }
}

describe("openConnect message handling (fake window)", () => {
  beforeEach(() => void vi.useFakeTimers())
  afterEach(() => {
    vi.useRealTimers()
    Reflect.deleteProperty(globalThis, "window")
  })

  it("opens the link in a 980×700 popup named zapier-connect, and normalises a numeric authId to a string", async () => {
    const { open, post, popup } = installWindow()
    const result = openConnect(LINK)
    assert.strictEqual(open.mock.calls[0]?.[0], LINK)
    assert.strictEqual(open.mock.calls[0]?.[1], "zapier-connect")
    assert.match(open.mock.calls[0]?.[2] ?? "", /width=980,height=700/)
    post({ type: "somethingElse" })
    post({ type: "authenticationSuccess", authId: 12345, extra: "dropped" })
    assert.deepStrictEqual(await result, { type: "authenticationSuccess", authId: "12345" })
    assert.strictEqual(popup.close.mock.calls.length, 1)
    assert.strictEqual(vi.getTimerCount(), 0)
  })

  it("keeps a string authId (trimmed) and a state that Connect echoed", async () => {
    const { post } = installWindow()
    const result = openConnect(LINK)
    post({ type: "authenticationSuccess", authId: " 987 ", state: "st-1" })
    assert.deepStrictEqual(await result, { type: "authenticationSuccess", authId: "987", state: "st-1" })
  })

  it("adds the link's own state when Connect UI echoed none, so the backend knows which attempt it answers", async () => {
    const { post } = installWindow()
    const result = openConnect(`${LINK}&state=st-link`)
    post({ type: "authenticationSuccess", authId: 5 })
    assert.deepStrictEqual(await result, { type: "authenticationSuccess", authId: "5", state: "st-link" })
  })

  it("a success message without a usable authId is a denial with error malformed_auth_id", async () => {
    for (const authId of [undefined, "", -1, 1.5, { id: 1 }, "x".repeat(129)]) {
      const { post } = installWindow()
      const result = openConnect(LINK)
      post({ type: "authenticationSuccess", authId })
      const error = await rejection(result)
      assert.instanceOf(error, ConnectError)
      assert.deepStrictEqual(
        [(error as ConnectError).reason, (error as ConnectError).error],
        ["denied", "malformed_auth_id"]
      )
    }
  })

  it("an authenticationError carries Connect's error (of any shape) on the ConnectError", async () => {
    const { post } = installWindow()
    const result = openConnect(LINK)
    post({ type: "authenticationError", error: { error: "server_error", detail: "OAuth Failed" } })
    const error = (await rejection(result)) as ConnectError
    assert.strictEqual(error.reason, "denied")
    assert.deepStrictEqual(error.error, { error: "server_error", detail: "OAuth Failed" })
    assert.include(error.message, "server_error")
  })

  it("ignores other origins and other windows", async () => {
    const { post } = installWindow()
    const result = openConnect(LINK, { timeoutMs: 1000 })
    post({ type: "authenticationSuccess", authId: 1 }, "https://evil.example")
    post({ type: "authenticationSuccess", authId: 2 }, CONNECT_ORIGIN, {})
    vi.advanceTimersByTime(1000)
    assert.strictEqual(((await rejection(result)) as ConnectError).reason, "timeout")
  })

  it("a message still queued when the popup is seen closed wins over closed", async () => {
    const { post, popup } = installWindow()
    const result = openConnect(LINK, { pollIntervalMs: 100 })
    popup.closed = true
    vi.advanceTimersByTime(100) // the poll sees the popup closed and allows a short grace
    post({ type: "authenticationSuccess", authId: 5 })
    assert.deepStrictEqual(await result, { type: "authenticationSuccess", authId: "5" })
    assert.strictEqual(vi.getTimerCount(), 0)
  })

  it("a closed popup rejects with closed after the grace; the default timeout is 15 minutes", async () => {
    const { popup } = installWindow()
    const closed = openConnect(LINK, { pollIntervalMs: 100 })
    popup.closed = true
    vi.advanceTimersByTime(1000)
    assert.strictEqual(((await rejection(closed)) as ConnectError).reason, "closed")
    assert.strictEqual(popup.close.mock.calls.length, 0)

    const { popup: second } = installWindow()
    const timedOut = openConnect(LINK)
    vi.advanceTimersByTime(DEFAULT_TIMEOUT_MS - 1)
    assert.strictEqual(second.close.mock.calls.length, 0)
    vi.advanceTimersByTime(1)
    assert.strictEqual(((await rejection(timedOut)) as ConnectError).reason, "timeout")
    assert.strictEqual(second.close.mock.calls.length, 1)
    assert.strictEqual(vi.getTimerCount(), 0)
  })

  it("a blocked popup (window.open returns null) rejects with blocked and leaves nothing behind", async () => {
    const { open } = installWindow()
    open.mockReturnValueOnce(null)
    const error = (await rejection(openConnect(LINK))) as ConnectError
    assert.strictEqual(error.reason, "blocked")
    assert.strictEqual(vi.getTimerCount(), 0)
  })

  it("a second openConnect takes the popup over: the first rejects with aborted and leaves the window open", async () => {
    const { post, popup, open } = installWindow()
    const first = openConnect(LINK)
    const second = openConnect(`${LINK}-2`)
    assert.strictEqual(open.mock.calls.length, 2)
    const error = (await rejection(first)) as ConnectError
    assert.strictEqual(error.reason, "aborted")
    assert.strictEqual(popup.close.mock.calls.length, 0)
    post({ type: "authenticationSuccess", authId: 2 })
    assert.deepStrictEqual(await second, { type: "authenticationSuccess", authId: "2" })
    assert.strictEqual(vi.getTimerCount(), 0)
  })

  it("origin 'link' trusts the link's own origin; closePopup: false leaves the popup open", async () => {
    const { post, popup } = installWindow()
    const result = openConnect("http://127.0.0.1:4000/to/app?token=t", { origin: "link", closePopup: false })
    post({ type: "authenticationSuccess", authId: 9 }, CONNECT_ORIGIN)
    post({ type: "authenticationSuccess", authId: 7 }, "http://127.0.0.1:4000")
    assert.deepStrictEqual(await result, { type: "authenticationSuccess", authId: "7" })
    assert.strictEqual(popup.close.mock.calls.length, 0)
  })
})
