// `pnpm house` (and the first step of `pnpm test`): the house rules of packages/*/src, checked from the sources.
// 1. No module over 700 lines (split it by responsibility).
// 2. No import cycle between the modules of one package: every import counts, runtime or type-only, static,
//    re-export or dynamic. A cycle is reported as its path (a.ts -> b.ts -> a.ts).
// 3. The packages import each other in one direction: a package imports `@effect-zapier/x` only when x is one of
//    its dependencies or peer dependencies (a dev dependency is for tests), core imports no other package of the
//    workspace, and the packages' imports form no cycle (no package imports one that depends on it).
// Prints one summary line; exits 1 with every finding when a rule is broken.
import * as fs from "node:fs"
import * as path from "node:path"
import ts from "typescript"

const root = path.dirname(import.meta.dirname)
const maxLines = 700
const scope = "@effect-zapier/"

const findings = []
const packagesDir = path.join(root, "packages")

/** The `.ts` files under `dir`, recursively. */
const sources = (dir) =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) return sources(full)
    return entry.isFile() && entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [full] : []
  })

/** Every module specifier `file` imports: imports, `import type`, re-exports, `import()` and `require`. */
const specifiers = (text) =>
  ts
    .preProcessFile(text, /* readImportFiles */ true, /* detectJavaScriptImports */ true)
    .importedFiles.map((f) => f.fileName)

/** The module a relative specifier names (`./X.js` is `./X.ts` in the sources), or undefined outside `files`. */
const resolveRelative = (from, specifier, files) => {
  const base = path.resolve(path.dirname(from), specifier)
  const candidates = [
    base,
    base.replace(/\.(m|c)?js$/, ".ts"),
    `${base}.ts`,
    path.join(base, "index.ts"),
    path.join(base.replace(/\.(m|c)?js$/, ""), "index.ts")
  ]
  return candidates.find((c) => files.has(c))
}

/** The package a bare specifier names, when it is one of the workspace's (`@effect-zapier/core/Domain` -> core). */
const workspacePackage = (specifier) =>
  specifier.startsWith(scope) ? `${scope}${specifier.slice(scope.length).split("/")[0]}` : undefined

/** Every elementary cycle's representative path, found by a depth-first search (one report per cycle). */
const cyclesOf = (graph) => {
  const cycles = []
  const seen = new Set()
  const state = new Map() // node -> "open" | "done"
  const stack = []
  const visit = (node) => {
    state.set(node, "open")
    stack.push(node)
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === "open") {
        const cycle = [...stack.slice(stack.indexOf(next)), next]
        // The same cycle entered at another node is reported once.
        const key = [...cycle.slice(0, -1)].sort().join("\u0000")
        if (!seen.has(key)) {
          seen.add(key)
          cycles.push(cycle)
        }
      } else if (!state.has(next)) {
        visit(next)
      }
    }
    stack.pop()
    state.set(node, "done")
  }
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node)
  return cycles
}

let modules = 0
let largest = { file: "", lines: 0 }
let moduleCycles = 0
const packageGraph = new Map()
const packageDirs = fs
  .readdirSync(packagesDir, { withFileTypes: true })
  .filter((d) => d.isDirectory() && fs.existsSync(path.join(packagesDir, d.name, "package.json")))
  .map((d) => path.join(packagesDir, d.name))
  .sort()

for (const dir of packageDirs) {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"))
  const src = path.join(dir, "src")
  if (!fs.existsSync(src)) continue
  const allowed = new Set([
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {})
  ])
  const files = new Set(sources(src))
  const graph = new Map()
  const imported = new Set()
  for (const file of [...files].sort()) {
    const text = fs.readFileSync(file, "utf8")
    const rel = path.relative(root, file)
    modules++
    const lines = text.split("\n").length - (text.endsWith("\n") ? 1 : 0)
    if (lines > largest.lines) largest = { file: rel, lines }
    if (lines > maxLines) findings.push(`${rel}: ${lines} lines (at most ${maxLines}; split it by responsibility)`)
    const edges = new Set()
    for (const specifier of specifiers(text)) {
      if (specifier.startsWith(".")) {
        const target = resolveRelative(file, specifier, files)
        if (target === undefined) {
          findings.push(`${rel}: imports ${specifier}, which is no module of ${path.relative(root, src)}`)
        } else if (target !== file) edges.add(target)
        continue
      }
      const pkg = workspacePackage(specifier)
      if (pkg === undefined) continue
      if (pkg === manifest.name) {
        findings.push(`${rel}: imports its own package by name (${specifier}); import the module relatively`)
        continue
      }
      imported.add(pkg)
      if (!allowed.has(pkg)) {
        findings.push(
          `${rel}: imports ${specifier}, but ${pkg} is not among ${manifest.name}'s dependencies or peer dependencies`
        )
      }
    }
    graph.set(file, [...edges].sort())
  }
  for (const cycle of cyclesOf(graph)) {
    moduleCycles++
    findings.push(
      `import cycle in ${manifest.name}: ${cycle.map((f) => path.relative(path.join(dir, "src"), f)).join(" -> ")}`
    )
  }
  packageGraph.set(manifest.name, [...imported].sort())
}

const core = `${scope}core`
for (const pkg of packageGraph.get(core) ?? [])
  findings.push(`${core} imports ${pkg}: core depends on no other package`)
const packageCycles = cyclesOf(packageGraph)
for (const cycle of packageCycles) findings.push(`packages import each other: ${cycle.join(" -> ")}`)

const summary = `house: ${modules} modules in ${packageGraph.size} packages checked, largest ${largest.file} (${largest.lines} lines, max ${maxLines}), module cycles ${moduleCycles}, package cycles ${packageCycles.length}`
if (findings.length > 0) {
  process.stderr.write(`${findings.map((f) => `✗ ${f}`).join("\n")}\n${summary}\n`)
  process.exit(1)
}
process.stdout.write(`${summary}\n`)
