/**
 * The sample seed: a Slack-like app, a Google-Sheets-like app and an app without authentication. Re-exported by
 * `FakeZapier`.
 *
 * @internal
 */
import { Domain } from "@effect-zapier/core"
import { type ChoiceSeed, type FieldSeed, type InputFieldSeed, RunScript, type Seed } from "./seed.js"

// ---------------------------------------------------------------------------------------------------------------
// Sample seed
// ---------------------------------------------------------------------------------------------------------------

/**
 * Ids and keys of {@link sampleSeed}.
 * @since 0.1.0
 * @category fixtures
 */
export const sample = {
  /** The Slack-like app (`service: "SlackAPI"`). */
  slack: Domain.AppId.make("slack"),
  /** A Google-Sheets-like app (`service: "GoogleSheetsV2API"`). */
  sheets: Domain.AppId.make("google-sheets"),
  /** An app without authentication (runs with `connection: null`). */
  formatter: Domain.AppId.make("formatter"),
  /** WRITE, succeeds after 2 s with `[{ ok: true, channel, text, ts }]`. */
  sendChannelMessage: Domain.ActionKey.make("send_channel_message"),
  /** WRITE, fails after 1 s with a `user` error. */
  sendDirectMessage: Domain.ActionKey.make("send_direct_message"),
  /** WRITE, never finishes. */
  exportChannelHistory: Domain.ActionKey.make("export_channel_history"),
  /** SEARCH, succeeds after 500 ms. */
  findUserByEmail: Domain.ActionKey.make("find_user_by_email"),
  /** READ (instant), succeeds at once. */
  listChannels: Domain.ActionKey.make("list_channels"),
  /** READ, a trigger: "New Message in Channel" (input `channel`, required, a dropdown of the channels). */
  newChannelMessage: Domain.ActionKey.make("new_channel_message"),
  /** WRITE on sheets, succeeds after 10 s. */
  createSpreadsheetRow: Domain.ActionKey.make("create_spreadsheet_row"),
  /** WRITE on formatter (no auth), succeeds after 500 ms with the upper-cased `text`. */
  uppercase: Domain.ActionKey.make("uppercase"),
  /** The sample partner's client credentials and JWT settings. */
  clientId: "fake-client-id",
  clientSecret: "fake-client-secret",
  issuer: "https://partner.example",
  /** A sample end user. */
  user: Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
} as const

/**
 * The channels of the sample Slack workspace: the choices of `channel` (23 of them: three pages of 10).
 * @since 0.1.0
 * @category fixtures
 */
export const sampleChannels: ReadonlyArray<string> = [
  "general",
  "random",
  "announcements",
  "engineering",
  "design",
  "marketing",
  "sales",
  "support",
  "ops",
  "hiring",
  "finance",
  "legal",
  "product",
  "qa",
  "data",
  "security",
  "infra",
  "mobile",
  "web",
  "partners",
  "events",
  "watercooler",
  "zapier-alerts"
].map((name) => `#${name}`)

const channelChoices: ReadonlyArray<ChoiceSeed> = sampleChannels.map((value, i) => ({
  id: `C${String(i + 1).padStart(3, "0")}`,
  value,
  label: value.slice(1)
}))

const spreadsheets: Record<string, { readonly title: string; readonly sheets: Record<string, ReadonlyArray<string>> }> =
  {
    "sheet-leads": { title: "Leads", sheets: { "ws-1": ["Name", "Email", "Amount"], "ws-2": ["Name", "Notes"] } },
    "sheet-budget": { title: "Budget 2026", sheets: { "ws-1": ["Item", "Amount"] } }
  }

/** The sheets action's fields: spreadsheet, then (once chosen) its worksheets, then (once chosen) its columns. */
const spreadsheetRowFields = (inputs: Readonly<Record<string, unknown>>): ReadonlyArray<FieldSeed> => {
  const spreadsheet = typeof inputs.spreadsheet === "string" ? spreadsheets[inputs.spreadsheet] : undefined
  const columns =
    spreadsheet !== undefined && typeof inputs.worksheet === "string" ? spreadsheet.sheets[inputs.worksheet] : undefined
  return [
    {
      id: "spreadsheet",
      title: "Spreadsheet",
      required: true,
      invalidates: true,
      choices: Object.entries(spreadsheets).map(([value, s]) => ({ value, label: s.title }))
    },
    ...(spreadsheet === undefined
      ? []
      : [
          {
            id: "worksheet",
            title: "Worksheet",
            required: true,
            invalidates: true,
            dependsOn: ["spreadsheet"],
            choices: Object.keys(spreadsheet.sheets).map((value, i) => ({ value, label: `Sheet${i + 1}` }))
          } satisfies InputFieldSeed
        ]),
    ...(columns ?? []).map(
      (title, i): InputFieldSeed => ({
        id: `COL$${String.fromCharCode(65 + i)}`,
        title,
        required: i === 0,
        valueType: title === "Amount" ? "NUMBER" : "STRING",
        dependsOn: ["worksheet"]
      })
    )
  ]
}

/**
 * A ready catalog for examples and tests: a Slack-like app with a succeeding, a failing and a never-finishing
 * action (plus a SEARCH and an instant READ), a spreadsheet app with a 10 s action, and an app without
 * authentication. No users or connections: the flow starts with none. Register a partner key for the HTTP server
 * with `FakeZapierServer` / `PartnerKey.register`.
 *
 * Input fields: `send_channel_message` takes `channel` (required, a dropdown of {@link sampleChannels}), `text`
 * (required), `send_as_bot` (a boolean that `invalidates`: when `true`, `bot_name` (required) and `bot_icon`
 * appear), an info field, and a fieldset "Advanced" with `unfurl_links` (boolean, default `true`) and `mentions`
 * (a list of strings); its output fields are `ok`, `channel`, `text`, `ts`. `create_spreadsheet_row` has
 * `spreadsheet`, then `worksheet` once a spreadsheet is chosen, then one field per column (`COL$A`, …) once a
 * worksheet is chosen. `uppercase` takes `text` (required).
 * @since 0.1.0
 * @category fixtures
 */
export const sampleSeed: Seed = {
  partner: { clientId: sample.clientId, clientSecret: sample.clientSecret, issuer: sample.issuer },
  apps: [
    {
      id: sample.slack,
      title: "Slack",
      service: "SlackAPI",
      description: "Slack is a channel-based messaging platform.",
      categories: ["team-chat", "communication"],
      actions: [
        {
          key: sample.sendChannelMessage,
          actionType: "WRITE",
          title: "Send Channel Message",
          description: "Posts a new message to a specific #channel you choose.",
          run: RunScript.succeed("2 seconds", (inputs) => [
            { ok: true, channel: inputs.channel ?? null, text: inputs.text ?? null, ts: "1711900000.000100" }
          ]),
          inputFields: [
            {
              id: "channel",
              title: "Channel",
              description: "The channel to post to.",
              required: true,
              choices: channelChoices
            },
            {
              id: "text",
              title: "Message Text",
              description: "The text of the message.",
              required: true,
              format: "MULTILINE",
              placeholder: "Hello from the workflow"
            },
            {
              id: "send_as_bot",
              title: "Send as a Bot?",
              valueType: "BOOLEAN",
              invalidates: true,
              default: "false"
            },
            {
              id: "bot_name",
              title: "Bot Name",
              required: true,
              dependsOn: ["send_as_bot"],
              when: (inputs) => inputs.send_as_bot === true
            },
            {
              id: "bot_icon",
              title: "Bot Icon",
              description: "An emoji such as :robot_face:",
              dependsOn: ["send_as_bot"],
              when: (inputs) => inputs.send_as_bot === true
            },
            {
              type: "info",
              id: "posting_as",
              description: "Messages are posted as the connected Slack user unless sent as a bot."
            },
            {
              type: "fieldset",
              id: "advanced",
              title: "Advanced",
              fields: [
                { id: "unfurl_links", title: "Unfurl Links", valueType: "BOOLEAN", default: "true" },
                { id: "mentions", title: "Mention Users", list: true, description: "User ids to mention." }
              ]
            }
          ],
          outputFields: [
            { id: "ok", title: "OK", sample: true },
            { id: "channel", title: "Channel", sample: "#general" },
            { id: "text", title: "Message Text", sample: "Hello" },
            { id: "ts", title: "Timestamp", sample: "1711900000.000100" }
          ]
        },
        {
          key: sample.sendDirectMessage,
          actionType: "WRITE",
          title: "Send Direct Message",
          description: "Sends a direct message to a user.",
          run: RunScript.fail("1 second", [
            { code: "user", title: "User not found", detail: "No Slack user matches the given username." }
          ]),
          inputFields: [
            { id: "user", title: "User", choices: ["U024BE7LH", "U061F7AUR"] },
            { id: "text", title: "Message Text", required: true }
          ]
        },
        {
          key: sample.exportChannelHistory,
          actionType: "WRITE",
          title: "Export Channel History",
          description: "Exports the whole history of a channel (never finishes in the fake).",
          run: RunScript.pending,
          inputFields: [{ id: "channel", title: "Channel", required: true, choices: channelChoices }]
        },
        {
          key: sample.findUserByEmail,
          actionType: "SEARCH",
          title: "Find User by Email",
          run: RunScript.succeed("500 millis", (inputs) => [
            { id: "U024BE7LH", email: inputs.email ?? null, name: "sample.user" }
          ]),
          inputFields: [{ id: "email", title: "Email", required: true }]
        },
        {
          key: sample.listChannels,
          actionType: "READ",
          title: "List Channels",
          isInstant: true,
          run: RunScript.succeed(0, [
            { id: "C01", name: "general" },
            { id: "C02", name: "random" }
          ])
        },
        {
          key: sample.newChannelMessage,
          actionType: "READ",
          title: "New Message in Channel",
          description: "Triggers when a new message is posted to a channel (embedded triggers: a Trigger Inbox).",
          isInstant: true,
          run: RunScript.succeed(0, [{ id: "evt-1", text: "Hello", channel: "#general" }]),
          inputFields: [
            {
              id: "channel",
              title: "Channel",
              description: "The channel to watch.",
              required: true,
              choices: channelChoices
            }
          ],
          outputFields: [
            { id: "id", title: "Event ID", sample: "evt-1" },
            { id: "text", title: "Message Text", sample: "Hello" },
            { id: "channel", title: "Channel", sample: "#general" }
          ]
        }
      ]
    },
    {
      id: sample.sheets,
      title: "Google Sheets",
      service: "GoogleSheetsV2API",
      categories: ["spreadsheets"],
      actions: [
        {
          key: sample.createSpreadsheetRow,
          actionType: "WRITE",
          title: "Create Spreadsheet Row",
          run: RunScript.succeed("10 seconds", (inputs) => [{ row: 2, values: inputs }]),
          inputFields: spreadsheetRowFields
        }
      ]
    },
    {
      id: sample.formatter,
      title: "Formatter",
      service: "FormatterAPI",
      categories: ["developer-tools"],
      requiresAuth: false,
      actions: [
        {
          key: sample.uppercase,
          actionType: "WRITE",
          title: "Uppercase Text",
          run: RunScript.succeed("500 millis", (inputs) => [
            { output: typeof inputs.text === "string" ? inputs.text.toUpperCase() : "" }
          ]),
          inputFields: [{ id: "text", title: "Text", required: true }],
          outputFields: [{ id: "output", title: "Output", sample: "HELLO" }]
        }
      ]
    }
  ]
}
