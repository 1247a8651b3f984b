/**
 * The partner's page: plain TypeScript over the DOM, bundled by esbuild when the server starts.
 *
 * Choose an app and action, fill the inputs (the form comes from the action's input fields once the user is
 * connected; before that, the inputs are typed as JSON), press Run. When the backend answers 409 (no valid
 * connection), the page opens Zapier Connect in a popup with `openConnect`, posts the popup's payload to the
 * backend, and runs again. Then it polls the run and shows each status, and the result or the error's message.
 *
 * Triggers: pick one of the app's triggers and fill its inputs, press Watch; the backend ensures the user's Trigger
 * Inbox and consumes it in the background. The page polls the user's watches (same-origin JSON) and shows each
 * event as it arrives.
 */
import { ConnectError, openConnect, redirectToConnect } from "@effect-zapier/connect"

interface AppInfo {
  readonly id: string
  readonly title: string
  readonly requiresAuth: boolean
}
interface ActionInfo {
  readonly key: string
  readonly title: string
  readonly actionType: string
  readonly description?: string
}
interface FieldInfo {
  readonly kind: "input" | "info"
  readonly id: string
  readonly title: string
  readonly description?: string
  readonly required: boolean
  readonly type: string
  readonly list: boolean
  readonly multiline: boolean
  readonly default?: string
  readonly placeholder?: string
  readonly invalidates: boolean
  readonly choices?: ReadonlyArray<{ readonly value: string; readonly label: string }>
}
interface ConnectionNeeded {
  readonly _tag: "ConnectionNeeded"
  readonly reason: "missing" | "expired"
  readonly connectUrl: string
  readonly connectOrigin: string
  readonly message: string
}
interface ConnectionInfo {
  readonly id: string
  readonly title?: string
  /** Zapier announced that the connection ends at `expiresAt` (epoch ms); `reconnectUrl` renews it. */
  readonly expiring?: { readonly expiresAt: number; readonly reconnectUrl?: string; readonly connectOrigin: string }
}
interface RunView {
  readonly runId: string
  readonly state: "pending" | "succeeded" | "failed"
  readonly status: string
  readonly results?: ReadonlyArray<unknown>
  readonly error?: { readonly tag: string; readonly message: string }
}
interface ApiError {
  readonly _tag?: string
  readonly message?: string
  readonly problems?: ReadonlyArray<{ readonly field: string; readonly message: string }>
}
interface Answer<A> {
  readonly status: number
  readonly body: A
}

const $ = <E extends HTMLElement>(id: string): E => {
  const element = document.getElementById(id)
  if (!element) throw new Error(`#${id} is missing from the page`)
  return element as E
}

const api = async <A>(method: string, path: string, body?: unknown): Promise<Answer<A>> => {
  const response = await fetch(path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await response.text()
  return { status: response.status, body: (text.length > 0 ? JSON.parse(text) : undefined) as A }
}

const messageOf = (answer: Answer<unknown>): string => {
  const body = answer.body as ApiError | undefined
  return body?.message ?? `The server answered ${answer.status}.`
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------------------------

let apps: ReadonlyArray<AppInfo> = []
let actions: ReadonlyArray<ActionInfo> = []
let fields: ReadonlyArray<FieldInfo> | undefined
let runToken = 0

const currentApp = (): AppInfo | undefined => apps.find((a) => a.id === $<HTMLSelectElement>("app").value)
const currentAction = (): ActionInfo | undefined => actions.find((a) => a.key === $<HTMLSelectElement>("action").value)

// ---------------------------------------------------------------------------------------------------------------
// Login
// ---------------------------------------------------------------------------------------------------------------

const showLogin = () => {
  $("login").hidden = false
  $("app-ui").hidden = true
  $("who").hidden = true
}

const showApp = async (user: { readonly userId: string; readonly tenantId: string }) => {
  $("login").hidden = true
  $("app-ui").hidden = false
  $("who").hidden = false
  $("whoami").textContent = `${user.userId} @ ${user.tenantId}`
  const answer = await api<ReadonlyArray<AppInfo>>("GET", "/api/apps")
  if (answer.status !== 200) return showError(messageOf(answer))
  apps = answer.body
  const select = $<HTMLSelectElement>("app")
  select.replaceChildren(...apps.map((a) => new Option(a.title, a.id)))
  void pollWatches()
  await loadApp()
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault()
  const answer = await api<{ userId: string; tenantId: string }>("POST", "/api/session", {
    userId: $<HTMLInputElement>("login-user").value,
    tenantId: $<HTMLInputElement>("login-tenant").value
  })
  if (answer.status === 200) await showApp(answer.body)
  else alert(messageOf(answer))
})

$("logout").addEventListener("click", async () => {
  await api("DELETE", "/api/session")
  showLogin()
})

// ---------------------------------------------------------------------------------------------------------------
// App, action, connection, fields
// ---------------------------------------------------------------------------------------------------------------

/** Numbers the app loads: only the latest one draws (an older app's actions would replace the chosen app's). */
let appLoad = 0

const loadApp = async () => {
  const app = currentApp()
  if (!app) return
  const load = ++appLoad
  const answer = await api<ReadonlyArray<ActionInfo>>("GET", `/api/apps/${encodeURIComponent(app.id)}/actions`)
  if (load !== appLoad) return
  if (answer.status !== 200) return showError(messageOf(answer))
  actions = answer.body
  $<HTMLSelectElement>("action").replaceChildren(
    ...actions.map((a) => new Option(`${a.title} (${a.actionType.toLowerCase()})`, a.key))
  )
  await Promise.all([refreshConnection(), loadAction(), loadTriggers()])
}

const loadAction = async (inputs: Record<string, unknown> = {}) => {
  $("action-description").textContent = currentAction()?.description ?? ""
  await loadFields(inputs)
}

/** The reconnect link of the current app's expiring connection, if it is. */
let reconnect: ConnectionNeeded | undefined

const setConnection = (state: string, text: string, button?: string) => {
  $("connection").dataset.state = state
  $("connection-text").innerHTML = text
  const connect = $<HTMLButtonElement>("connect")
  connect.hidden = button === undefined
  connect.textContent = button ?? ""
}

const escape = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!)

/**
 * `fresh`: the reconnect link shown was spent (its popup closed or failed), so ask for a new one. Asks with
 * `link=false`: without a connection the page shows only the Connect button, whose click asks for the link, so
 * loading the page or switching apps mints no connect token.
 */
const refreshConnection = async (fresh = false) => {
  const app = currentApp()
  if (!app) return
  if (!app.requiresAuth) return setConnection("none", `${escape(app.title)} needs no connection.`)
  const answer = await api<ConnectionInfo | Omit<ConnectionNeeded, "connectUrl">>(
    "GET",
    `/api/apps/${encodeURIComponent(app.id)}/connection?link=false${fresh ? "&fresh=true" : ""}`
  )
  reconnect = undefined
  if (answer.status === 200 && !("_tag" in answer.body)) {
    const title = answer.body.title ? ` (${escape(answer.body.title)})` : ""
    const expiring = answer.body.expiring
    if (expiring !== undefined) {
      // Zapier announced the connection's end (a connection webhook): it works until then; offer the reconnect.
      const when = new Date(expiring.expiresAt).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" })
      reconnect =
        expiring.reconnectUrl === undefined
          ? undefined
          : {
              _tag: "ConnectionNeeded",
              reason: "expired",
              connectUrl: expiring.reconnectUrl,
              connectOrigin: expiring.connectOrigin,
              message: ""
            }
      const link =
        reconnect === undefined ? "" : `, <a id="reconnect" href="${escape(reconnect.connectUrl)}">reconnect</a>`
      return setConnection(
        "expiring",
        `<strong>Connected</strong> to ${escape(app.title)}${title}: <strong>expires on ${escape(when)}</strong>${link}`
      )
    }
    return setConnection("connected", `<strong>Connected</strong> to ${escape(app.title)}${title}`)
  }
  if (answer.status === 409 && "_tag" in answer.body) {
    return answer.body.reason === "expired"
      ? setConnection("expired", `<strong>Connection expired</strong>: reconnect ${escape(app.title)}`, "Reconnect")
      : setConnection("missing", `<strong>Not connected</strong> to ${escape(app.title)}`, "Connect")
  }
  setConnection("unknown", escape(messageOf(answer)))
}

/** The form's inputs (or the JSON textarea's, before the fields are known). */
const collectInputs = (): Record<string, unknown> => {
  if (fields === undefined) {
    const text = $<HTMLTextAreaElement>("inputs-json").value.trim()
    const parsed: unknown = text.length === 0 ? {} : JSON.parse(text)
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new Error('The inputs must be a JSON object, like {"text": "Hello"}.')
    }
    return parsed as Record<string, unknown>
  }
  return readInputs(fields, "field-")
}

/** The values of a form drawn by `renderField` with this id prefix. */
const readInputs = (list: ReadonlyArray<FieldInfo>, prefix: string): Record<string, unknown> => {
  const inputs: Record<string, unknown> = {}
  for (const field of list) {
    if (field.kind !== "input") continue
    const element = document.getElementById(`${prefix}${field.id}`) as HTMLInputElement | HTMLSelectElement | null
    if (!element) continue
    if (field.type === "boolean") {
      if (element instanceof HTMLInputElement) inputs[field.id] = element.checked
      continue
    }
    const raw = element.value.trim()
    if (raw.length === 0) continue
    if (field.list) {
      inputs[field.id] = raw
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0)
    } else if (field.type === "number" || field.type === "integer") {
      inputs[field.id] = Number(raw)
    } else if (field.type === "object") {
      inputs[field.id] = JSON.parse(raw)
    } else {
      inputs[field.id] = raw
    }
  }
  return inputs
}

const renderField = (
  field: FieldInfo,
  value: unknown,
  prefix = "field-",
  onInvalidate: () => void = () => void loadFields(collectInputs())
): HTMLElement => {
  const wrapper = document.createElement("div")
  if (field.kind === "info") {
    wrapper.className = "info"
    wrapper.textContent = field.description ?? ""
    return wrapper
  }
  const id = `${prefix}${field.id}`
  const label = document.createElement("label")
  label.htmlFor = id
  label.innerHTML = `${escape(field.title)}${field.required ? " *" : ""}${
    field.description ? ` <small>${escape(field.description)}</small>` : ""
  }`
  let control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement
  if (field.type === "boolean") {
    const box = document.createElement("input")
    box.type = "checkbox"
    box.checked = value === true || (value === undefined && field.default === "true")
    control = box
  } else if (field.choices !== undefined) {
    const select = document.createElement("select")
    select.append(new Option("Choose…", ""), ...field.choices.map((c) => new Option(c.label, c.value)))
    select.value = typeof value === "string" ? value : ""
    control = select
  } else if (field.multiline) {
    const area = document.createElement("textarea")
    area.value = typeof value === "string" ? value : ""
    control = area
  } else {
    const input = document.createElement("input")
    input.type = field.type === "number" || field.type === "integer" ? "number" : "text"
    input.value = value === undefined ? "" : Array.isArray(value) ? value.join(", ") : String(value)
    control = input
  }
  control.id = id
  if ("placeholder" in control && field.placeholder) control.placeholder = field.placeholder
  if (field.invalidates) control.addEventListener("change", onInvalidate)
  wrapper.append(label, control)
  return wrapper
}

/** Numbers the fields loads: only the latest one draws (an older answer would undo a newer choice, or typed JSON). */
let fieldsLoad = 0

/** Asks the backend for the action's fields for these inputs; without a connection, falls back to JSON. */
const loadFields = async (inputs: Record<string, unknown>) => {
  const app = currentApp()
  const action = currentAction()
  const form = $("fields")
  if (!app || !action) return
  const load = ++fieldsLoad
  const answer = await api<ReadonlyArray<FieldInfo> | ConnectionNeeded>(
    "POST",
    `/api/apps/${encodeURIComponent(app.id)}/actions/${encodeURIComponent(action.key)}/fields`,
    { actionType: action.actionType, inputs }
  )
  if (load !== fieldsLoad) return
  if (answer.status === 200 && Array.isArray(answer.body)) {
    fields = answer.body
    form.replaceChildren(...fields.map((f) => renderField(f, inputs[f.id])))
    form.hidden = false
    $("json-inputs").hidden = true
    return
  }
  fields = undefined
  form.replaceChildren()
  form.hidden = true
  $("json-inputs").hidden = false
  $<HTMLTextAreaElement>("inputs-json").value = JSON.stringify(inputs, null, 2)
  $("json-note").textContent =
    answer.status === 409
      ? "Connect the app to see this action's fields; until then, type the inputs as JSON."
      : `The fields could not be loaded (${messageOf(answer)}); type the inputs as JSON.`
}

$("app").addEventListener("change", () => void loadApp())
$("action").addEventListener("change", () => void loadAction())

// ---------------------------------------------------------------------------------------------------------------
// Connect
// ---------------------------------------------------------------------------------------------------------------

/** Opens Connect in a popup and completes the connection on the backend. Resolves true when connected. */
const connect = async (needed: ConnectionNeeded): Promise<boolean> => {
  const app = currentApp()
  if (!app) return false
  addStatus(needed.reason === "expired" ? "reconnecting" : "connecting")
  try {
    const payload = await openConnect(needed.connectUrl, { origin: needed.connectOrigin })
    const answer = await api<unknown>("POST", `/api/apps/${encodeURIComponent(app.id)}/connection`, payload)
    if (answer.status !== 200) {
      showError(messageOf(answer))
      return false
    }
    addStatus("connected")
    await Promise.all([refreshConnection(), loadTriggerFields(triggerInputs())])
    return true
  } catch (e) {
    if (e instanceof ConnectError && e.reason === "blocked") {
      // No popup allowed: go the redirect way; /zapier/callback completes the connection and comes back here.
      redirectToConnect(needed.connectUrl, `${location.origin}/zapier/callback?app=${encodeURIComponent(app.id)}`)
      return false
    }
    showError(e instanceof Error ? e.message : String(e))
    // The link may have been opened (a connect token is single use): the backend's kept one would be spent.
    await refreshConnection(true)
    return false
  }
}

// The reconnect link of an expiring connection: Connect in a popup within this click (a link if script fails).
$("connection-text").addEventListener("click", async (event) => {
  const target = event.target
  if (!(target instanceof HTMLAnchorElement) || target.id !== "reconnect" || reconnect === undefined) return
  event.preventDefault()
  showOutcome()
  await connect(reconnect)
})

$("connect").addEventListener("click", async () => {
  const app = currentApp()
  if (!app) return
  const answer = await api<ConnectionNeeded>("GET", `/api/apps/${encodeURIComponent(app.id)}/connection`)
  if (answer.status === 409) {
    showOutcome()
    if (await connect(answer.body)) await loadFields(fields === undefined ? safeInputs() : collectInputs())
  } else await refreshConnection()
})

// ---------------------------------------------------------------------------------------------------------------
// Run
// ---------------------------------------------------------------------------------------------------------------

const showOutcome = () => {
  $("outcome").hidden = false
}

const addStatus = (status: string) => {
  const item = document.createElement("li")
  item.textContent = status
  if (status === "success" || status === "connected") item.className = "success"
  if (status === "error" || status === "failed") item.className = "error"
  $("timeline").append(item)
}

const showError = (message: string) => {
  showOutcome()
  const error = $("error")
  error.textContent = message
  error.hidden = false
}

const safeInputs = (): Record<string, unknown> => {
  try {
    return collectInputs()
  } catch {
    return {}
  }
}

const follow = async (run: RunView, token: number) => {
  let last = run.status
  addStatus(last)
  let current = run
  while (current.state === "pending") {
    await sleep(300)
    if (token !== runToken) return
    const answer = await api<RunView>("GET", `/api/runs/${encodeURIComponent(run.runId)}`)
    if (answer.status !== 200) return showError(messageOf(answer))
    current = answer.body
    if (current.status !== last) {
      last = current.status
      addStatus(last)
    }
  }
  if (current.state === "succeeded") {
    const result = $("result")
    result.textContent = JSON.stringify(current.results ?? [], null, 2)
    result.hidden = false
  } else {
    showError(`${current.error?.tag ?? "Error"}: ${current.error?.message ?? "the run failed"}`)
  }
}

$("run").addEventListener("click", async () => {
  const app = currentApp()
  const action = currentAction()
  if (!app || !action) return
  const token = ++runToken
  const button = $<HTMLButtonElement>("run")
  button.disabled = true
  $("timeline").replaceChildren()
  $("error").hidden = true
  $("result").hidden = true
  showOutcome()
  try {
    const inputs = collectInputs()
    const start = () =>
      api<RunView | ConnectionNeeded | ApiError>("POST", "/api/runs", {
        app: app.id,
        action: action.key,
        actionType: action.actionType,
        inputs
      })
    addStatus("starting")
    let answer = await start()
    if (answer.status === 409) {
      if (!(await connect(answer.body as ConnectionNeeded))) return
      answer = await start()
      void loadFields(inputs)
    }
    if (answer.status === 202) return await follow(answer.body as RunView, token)
    const body = answer.body as ApiError
    const problems = body.problems?.map((p) => `· ${p.field}: ${p.message}`).join("\n")
    addStatus("failed")
    showError(problems ? `${body.message ?? "Invalid inputs"}\n${problems}` : messageOf(answer))
  } catch (e) {
    showError(e instanceof Error ? e.message : String(e))
  } finally {
    button.disabled = false
  }
})

// ---------------------------------------------------------------------------------------------------------------
// Triggers: watch one, see its events as they arrive
// ---------------------------------------------------------------------------------------------------------------

interface TriggerEventView {
  readonly messageId: string
  readonly receivedAt: number
  readonly payload?: unknown
  readonly problem?: string
}
interface WatchView {
  readonly key: string
  readonly app: string
  readonly trigger: string
  readonly state: "consuming" | "stopped"
  readonly running: boolean
  readonly problem?: { readonly tag: string; readonly message: string }
  readonly total: number
  readonly events: ReadonlyArray<TriggerEventView>
}

let triggers: ReadonlyArray<ActionInfo> = []
let triggerFields: ReadonlyArray<FieldInfo> | undefined
let watchPolling = false

const currentTrigger = (): ActionInfo | undefined =>
  triggers.find((t) => t.key === $<HTMLSelectElement>("trigger").value)

/** The app's triggers (its READ actions). */
/** Numbers the trigger list loads, as {@link appLoad} does the actions. */
let triggersLoad = 0

const loadTriggers = async () => {
  const app = currentApp()
  if (!app) return
  const load = ++triggersLoad
  const answer = await api<ReadonlyArray<ActionInfo>>("GET", `/api/apps/${encodeURIComponent(app.id)}/triggers`)
  if (load !== triggersLoad) return
  triggers = answer.status === 200 ? answer.body : []
  $<HTMLSelectElement>("trigger").replaceChildren(...triggers.map((t) => new Option(t.title, t.key)))
  $<HTMLButtonElement>("watch").disabled = triggers.length === 0
  if (triggers.length === 0) $("trigger-description").textContent = `${app.title} has no triggers.`
  await loadTriggerFields({})
}

/** Numbers the trigger fields loads, as {@link fieldsLoad} does the action's. */
let triggerFieldsLoad = 0

/** The trigger's input fields (through the same endpoint as an action's). */
const loadTriggerFields = async (inputs: Record<string, unknown>) => {
  const app = currentApp()
  const trigger = currentTrigger()
  const form = $("trigger-fields")
  const note = $("trigger-note")
  const load = ++triggerFieldsLoad
  form.replaceChildren()
  note.hidden = true
  triggerFields = undefined
  if (!app || !trigger) return
  $("trigger-description").textContent = trigger.description ?? ""
  const answer = await api<ReadonlyArray<FieldInfo> | ConnectionNeeded>(
    "POST",
    `/api/apps/${encodeURIComponent(app.id)}/actions/${encodeURIComponent(trigger.key)}/fields`,
    { actionType: "READ", inputs }
  )
  if (load !== triggerFieldsLoad) return
  if (answer.status === 200 && Array.isArray(answer.body)) {
    const list: ReadonlyArray<FieldInfo> = answer.body
    triggerFields = list
    form.replaceChildren(
      ...list.map((f) => renderField(f, inputs[f.id], "trigger-field-", () => void loadTriggerFields(triggerInputs())))
    )
    return
  }
  note.hidden = false
  note.textContent =
    answer.status === 409
      ? "Connect the app to see this trigger's inputs (Watch connects first)."
      : `The trigger's inputs could not be loaded (${messageOf(answer)}).`
}

const triggerInputs = (): Record<string, unknown> =>
  triggerFields === undefined ? {} : readInputs(triggerFields, "trigger-field-")

const showWatchError = (message: string | undefined) => {
  const error = $("watch-error")
  error.textContent = message ?? ""
  error.hidden = message === undefined
}

const eventItem = (event: TriggerEventView): HTMLLIElement => {
  const item = document.createElement("li")
  item.dataset.messageId = event.messageId
  const at = new Date(event.receivedAt).toLocaleTimeString()
  // The payload comes from a third-party app: shown as text, never as markup.
  item.textContent = `${at} · ${event.problem ?? JSON.stringify(event.payload)}`
  if (event.problem !== undefined) item.className = "problem"
  return item
}

const renderWatches = (watches: ReadonlyArray<WatchView>) => {
  $("watches").replaceChildren(
    ...watches.map((w) => {
      const box = document.createElement("div")
      box.className = "watch"
      box.dataset.key = w.key
      box.dataset.state = w.state
      const head = document.createElement("div")
      head.className = "watch-head"
      const title = document.createElement("strong")
      title.textContent = `${w.trigger} · ${w.app}`
      const state = document.createElement("span")
      state.className = "watch-state"
      state.textContent =
        w.state === "consuming"
          ? `watching · ${w.total} event${w.total === 1 ? "" : "s"}`
          : `stopped${w.problem ? `: ${w.problem.message}` : ""} · ${w.total} event${w.total === 1 ? "" : "s"}`
      head.append(title, state)
      if (w.state === "consuming") {
        const stop = document.createElement("button")
        stop.type = "button"
        stop.className = "secondary stop"
        stop.textContent = "Stop"
        stop.addEventListener("click", async () => {
          stop.disabled = true
          const answer = await api("DELETE", `/api/watches/${encodeURIComponent(w.key)}`)
          if (answer.status !== 204) showWatchError(messageOf(answer))
          await refreshWatches()
        })
        head.append(stop)
      }
      const list = document.createElement("ol")
      list.className = "trigger-events"
      list.append(...w.events.map(eventItem))
      box.append(head, list)
      return box
    })
  )
}

const refreshWatches = async () => {
  const answer = await api<ReadonlyArray<WatchView>>("GET", "/api/watches")
  if (answer.status === 200) renderWatches(answer.body)
}

/** Polls the user's watches (same-origin JSON) while the app's page is shown. */
const pollWatches = async () => {
  if (watchPolling) return
  watchPolling = true
  while (!$("app-ui").hidden) {
    // A failed poll (the server restarting) is retried at the next turn.
    await refreshWatches().catch(() => undefined)
    await sleep(700)
  }
  watchPolling = false
}

$("trigger").addEventListener("change", () => void loadTriggerFields({}))

$("watch").addEventListener("click", async () => {
  const app = currentApp()
  const trigger = currentTrigger()
  if (!app || !trigger) return
  const button = $<HTMLButtonElement>("watch")
  button.disabled = true
  showWatchError(undefined)
  try {
    const inputs = triggerInputs()
    const watch = () =>
      api<WatchView | ConnectionNeeded | ApiError>("POST", "/api/watches", {
        app: app.id,
        trigger: trigger.key,
        inputs
      })
    let answer = await watch()
    if (answer.status === 409 && (answer.body as ApiError)._tag === "ConnectionNeeded") {
      if (!(await connect(answer.body as ConnectionNeeded))) return
      answer = await watch()
    }
    if (answer.status === 200) return await refreshWatches()
    const body = answer.body as ApiError
    const problems = body.problems?.map((p) => `· ${p.field}: ${p.message}`).join("\n")
    showWatchError(problems ? `${body.message ?? "Invalid inputs"}\n${problems}` : messageOf(answer))
  } catch (e) {
    showWatchError(e instanceof Error ? e.message : String(e))
  } finally {
    button.disabled = triggers.length === 0
  }
})

// ---------------------------------------------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------------------------------------------

/**
 * The page's own words for each refusal of the redirect callback. The URL is anybody's to craft, so nothing from it
 * is shown as text: only the reason code is read, and an unknown one gets the generic sentence.
 */
const connectFailures: Readonly<Record<string, string>> = {
  denied: "Zapier reported that the connection was not made. Try again.",
  not_logged_in: "Log in first, then connect again.",
  replay: "This connection link was already used. Start again from Run.",
  attempt_expired: "The connection link expired. Start again from Run.",
  connection_expired: "The connection has expired. Start again from Run to reconnect.",
  unavailable: "The connection could not be checked right now. Try again in a minute."
}

const connectFailure = (reason: string | null): string =>
  (reason !== null && Object.hasOwn(connectFailures, reason) ? connectFailures[reason] : undefined) ??
  "Connecting failed. Start again from Run."

const start = async () => {
  const answer = await api<{ userId: string; tenantId: string }>("GET", "/api/session")
  if (answer.status === 200) await showApp(answer.body)
  else showLogin()
  const back = new URLSearchParams(location.search)
  if (back.has("connect")) {
    // Back from the redirect pattern (/zapier/callback).
    showOutcome()
    if (back.get("connect") === "ok") addStatus("connected")
    else showError(connectFailure(back.get("reason")))
    history.replaceState(null, "", "/")
  }
}

void start()
