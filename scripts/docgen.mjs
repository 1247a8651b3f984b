// `pnpm docgen`: @effect/docgen in every library package, one after the other. Each run writes the package's API
// reference to docs/ (one page per module) and type-checks, then runs, every `@example` of its TSDoc; any failure
// fails the whole run. Prints the number of examples checked per package.
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { libraryPackages } from "./package-shape.mjs"

const root = path.dirname(import.meta.dirname)
const docgen = path.join(root, "node_modules/.bin/docgen")
let total = 0
const failed = []
for (const dir of libraryPackages()) {
  const name = path.basename(dir)
  const t0 = performance.now()
  // A module that moved or went away must not keep its page.
  fs.rmSync(path.join(dir, "docs/modules"), { recursive: true, force: true })
  // docgen runs tsc and tsx on the examples by name: the root's node_modules/.bin comes first on the PATH.
  const env = { ...process.env, PATH: `${path.join(root, "node_modules/.bin")}${path.delimiter}${process.env.PATH}` }
  const result = spawnSync(docgen, [], { cwd: dir, env, encoding: "utf8" })
  const output = `${result.stdout}${result.stderr}`
  const examples = Number(/(\d+) example\(s\) found/.exec(output)?.[1] ?? 0)
  const seconds = ((performance.now() - t0) / 1000).toFixed(1)
  if (result.status !== 0 || /ERROR/.test(output)) {
    failed.push(name)
    process.stderr.write(`✗ ${name} (${seconds} s)\n${output}\n`)
  } else {
    total += examples
    process.stdout.write(
      `✓ ${name}: reference in ${path.relative(root, dir)}/docs, ${examples} examples type-checked and run (${seconds} s)\n`
    )
  }
}
if (failed.length > 0) {
  process.stderr.write(`docgen failed in ${failed.join(", ")}\n`)
  process.exit(1)
}
process.stdout.write(`docgen: ${total} examples, 0 failing\n`)
