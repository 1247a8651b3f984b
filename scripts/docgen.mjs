// `pnpm docgen`: @effect/docgen in every library package, two at a time. Each run writes the package's API
// reference to docs/ (one page per module) and type-checks, then runs, every `@example` of its TSDoc; any failure
// fails the whole run. Prints the number of examples checked per package.
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { libraryPackages } from "./package-shape.mjs"

const root = path.dirname(import.meta.dirname)
const docgen = path.join(root, "node_modules/.bin/docgen")
// docgen runs tsc and tsx on the examples by name: the root's node_modules/.bin comes first on the PATH.
const env = { ...process.env, PATH: `${path.join(root, "node_modules/.bin")}${path.delimiter}${process.env.PATH}` }

const one = (dir) =>
  new Promise((resolve) => {
    const name = path.basename(dir)
    const t0 = performance.now()
    // A module that moved or went away must not keep its page.
    fs.rmSync(path.join(dir, "docs/modules"), { recursive: true, force: true })
    const child = spawn(docgen, [], { cwd: dir, env })
    let output = ""
    child.stdout.on("data", (chunk) => (output += chunk))
    child.stderr.on("data", (chunk) => (output += chunk))
    child.on("close", (status) => {
      const examples = Number(/(\d+) example\(s\) found/.exec(output)?.[1] ?? 0)
      const seconds = ((performance.now() - t0) / 1000).toFixed(1)
      const ok = status === 0 && !/ERROR/.test(output)
      if (ok) {
        process.stdout.write(
          `✓ ${name}: reference in ${path.relative(root, dir)}/docs, ${examples} examples type-checked and run (${seconds} s)\n`
        )
      } else {
        process.stderr.write(`✗ ${name} (${seconds} s)\n${output}\n`)
      }
      resolve({ name, ok, examples })
    })
  })

const queue = libraryPackages()
const results = []
const worker = async () => {
  for (let dir = queue.shift(); dir !== undefined; dir = queue.shift()) results.push(await one(dir))
}
await Promise.all([worker(), worker()])
const failed = results.filter((r) => !r.ok).map((r) => r.name)
if (failed.length > 0) {
  process.stderr.write(`docgen failed in ${failed.join(", ")}\n`)
  process.exit(1)
}
process.stdout.write(
  `docgen: ${results.reduce((n, r) => n + r.examples, 0)} examples in ${results.length} packages, 0 failing\n`
)
