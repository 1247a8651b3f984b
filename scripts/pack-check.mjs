// `pnpm test:pack`: proves the packages install and run the way a partner's app gets them, outside this repository.
//
//  1. the publish shape of every library package (scripts/package-shape.mjs);
//  2. `pnpm build`, then `pnpm pack` of every library package (publishConfig swaps the exports to dist/);
//  3. publint (strict: warnings count) and arethetypeswrong on every tarball, every entry point named explicitly
//     (attw cannot expand the `./*` pattern by itself). attw runs with the `esm-only` profile: the packages are ESM
//     only, so `require()` from CommonJS and the pre-exports `node10` resolution are out of scope on purpose;
//  4. a scratch app in the OS temp directory (not under this workspace, so nothing resolves through it) installs
//     the tarballs with plain `npm` and takes every third-party package from the registry (`--prefer-offline`
//     reuses npm's cache). It installs `@effect/sql-pg` and not `@effect/sql-sqlite-node`, as a PostgreSQL user
//     would, and checks that no SQLite driver arrived;
//  5. the app's sources are compiled with `tsc --strict` under `module: NodeNext` and again under
//     `moduleResolution: bundler`, with `skipLibCheck` on as in most apps (Effect's own @effect/platform-node
//     declarations import `ws` types that nothing installs, so no app that uses it can turn it off); tsc must load
//     every @effect-zapier declaration file from dist/:
//     - readme.ts: the root README's in-memory example (FakeZapier.layer), copied from the README as written;
//     - examples/quickstart/src/*.ts as written, the live wiring (ZapierHttp over undici against
//       FakeZapierServer on loopback);
//     - entrypoints.ts: the driver-split entry points of sql and workflow, the browser helper, `internal/` refused;
//  6. the NodeNext output runs with plain `node` (no tsx): the README example prints the run's results, the
//     quickstart reaches a successful run, and entrypoints.js proves `internal/` is not importable.
//
// Options: --keep (leave the scratch app for inspection), --skip-build (reuse dist/ from a previous `pnpm build`).
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { libraryPackages } from "./package-shape.mjs"

const root = path.dirname(import.meta.dirname)
const keep = process.argv.includes("--keep")
const skipBuild = process.argv.includes("--skip-build")
const started = performance.now()
const timings = []

const step = (name, f) => {
  const t0 = performance.now()
  process.stdout.write(`\n▸ ${name}\n`)
  const result = f()
  timings.push(`${name} ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  return result
}

/** Runs a command; on failure prints its output and exits. */
const run = (command, args, options = {}) => {
  try {
    return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], ...options })
  } catch (error) {
    process.stderr.write(`\n✗ ${command} ${args.join(" ")} (in ${options.cwd ?? root})\n`)
    process.stderr.write(`${error.stdout ?? ""}${error.stderr ?? ""}\n`)
    process.exit(1)
  }
}

const fail = (message) => {
  process.stderr.write(`\n✗ ${message}\n`)
  process.exit(1)
}

const packages = libraryPackages().map((dir) => ({
  dir,
  pkg: JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"))
}))

step("package shape", () => process.stdout.write(run(process.execPath, [path.join(root, "scripts/package-shape.mjs")])))

if (!skipBuild) step("pnpm build", () => run("pnpm", ["build"], { cwd: root }))

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "effect-zapier-consumer-"))
if (path.relative(root, scratch).split(path.sep)[0] !== "..") fail(`the scratch app ${scratch} is inside the workspace`)
const tarballs = path.join(scratch, "tarballs")
fs.mkdirSync(tarballs)

const packed = step("pnpm pack", () =>
  packages.map(({ dir, pkg }) => {
    const out = run("pnpm", ["pack", "--pack-destination", tarballs], { cwd: dir })
    const file = out.trim().split("\n").at(-1)
    if (!file.endsWith(".tgz") || !fs.existsSync(file)) fail(`pnpm pack of ${pkg.name} printed no tarball: ${out}`)
    process.stdout.write(`  ${pkg.name}: ${path.basename(file)} (${(fs.statSync(file).size / 1024).toFixed(0)} kB)\n`)
    return { dir, pkg, file }
  })
)

/** The entry points a consumer may import: `.` and one per top-level module of dist/ (never internal/). */
const entrypoints = (dir) => [
  ".",
  ...fs
    .readdirSync(path.join(dir, "dist"))
    .filter((file) => file.endsWith(".js") && file !== "index.js")
    .map((file) => `./${file.slice(0, -3)}`)
]

step("publint --strict", () => {
  for (const { pkg, file } of packed) {
    const out = run(path.join(root, "node_modules/.bin/publint"), ["run", file, "--strict"])
    process.stdout.write(`  ${pkg.name}: ${out.trim().split("\n").at(-1)}\n`)
  }
})

step("attw --profile esm-only", () => {
  for (const { dir, pkg, file } of packed) {
    const points = entrypoints(dir)
    // attw exits non-zero on any problem outside the ignored resolutions (node10, require() from CommonJS).
    const out = JSON.parse(
      run(path.join(root, "node_modules/.bin/attw"), [
        file,
        "--profile",
        "esm-only",
        "--format",
        "json",
        "--entrypoints",
        ...points
      ])
    )
    const ignored = new Set(["node10", "node16-cjs"])
    const problems = (out.analysis?.problems ?? []).filter((p) => !ignored.has(p.resolutionKind))
    if (problems.length > 0) fail(`attw found problems in ${pkg.name}:\n${JSON.stringify(problems, null, 2)}`)
    process.stdout.write(`  ${pkg.name}: ${points.length} entry points, 0 problems under node16 (ESM) and bundler\n`)
  }
})

// The scratch app: what a partner's package.json would list after following the READMEs.
const rootPkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"))
const peerRange = (name) => {
  for (const { pkg } of packages) if (pkg.peerDependencies?.[name]) return pkg.peerDependencies[name]
  fail(`no package declares a peer range for ${name}`)
}
const requiredPeers = [
  ...new Set(
    packages.flatMap(({ pkg }) =>
      Object.keys(pkg.peerDependencies ?? {}).filter(
        (name) => !name.startsWith("@effect-zapier/") && pkg.peerDependenciesMeta?.[name]?.optional !== true
      )
    )
  )
].sort()
const app = path.join(scratch, "app")
fs.mkdirSync(path.join(app, "src"), { recursive: true })
fs.writeFileSync(
  path.join(app, "package.json"),
  JSON.stringify(
    {
      name: "effect-zapier-consumer",
      private: true,
      type: "module",
      dependencies: {
        ...Object.fromEntries(packed.map(({ pkg, file }) => [pkg.name, `file:${path.relative(app, file)}`])),
        // every required peer of every package; of the optional ones only PostgreSQL's driver
        ...Object.fromEntries([...requiredPeers, "@effect/sql-pg"].map((name) => [name, peerRange(name)]))
      },
      devDependencies: {
        typescript: rootPkg.devDependencies.typescript,
        "@types/node": rootPkg.devDependencies["@types/node"]
      }
    },
    null,
    2
  )
)

step("npm install (tarballs + registry)", () =>
  run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], {
    cwd: app,
    env: { ...process.env, npm_config_workspaces: "false" }
  })
)
for (const driver of ["better-sqlite3", "@effect/sql-sqlite-node"]) {
  if (fs.existsSync(path.join(app, "node_modules", driver))) fail(`${driver} was installed for a PostgreSQL-only app`)
}

// The sources: the README example and the quickstart as written in this repository, plus the entry-point checks.
const readme = fs.readFileSync(path.join(root, "README.md"), "utf8")
const readmeExample = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)]
  .map((m) => m[1])
  .find((code) => code.includes("FakeZapier.layer("))
if (!readmeExample) fail("README.md has no ```ts block using FakeZapier.layer( (the in-memory example)")
fs.writeFileSync(path.join(app, "src/readme.ts"), readmeExample)
// Every module of the quickstart, so a module it gains later is compiled and run here too.
for (const file of fs.readdirSync(path.join(root, "examples/quickstart/src")).filter((f) => f.endsWith(".ts"))) {
  fs.copyFileSync(path.join(root, "examples/quickstart/src", file), path.join(app, "src", file))
}
const internalOf = packed
  .map(({ dir, pkg }) => {
    const internal = path.join(dir, "dist/internal")
    const first = fs.existsSync(internal) && fs.readdirSync(internal).find((f) => f.endsWith(".js"))
    return first ? `${pkg.name}/internal/${first.slice(0, -3)}` : undefined
  })
  .filter((name) => name !== undefined)
fs.writeFileSync(
  path.join(app, "src/entrypoints.ts"),
  `// Each database driver has its own entry point; the root entry point needs none.
import { SqlStore } from "@effect-zapier/sql"
import * as PgStore from "@effect-zapier/sql/PgStore"
import { openConnect } from "@effect-zapier/connect"
import { DurableRuns } from "@effect-zapier/workflow"
import * as DurablePg from "@effect-zapier/workflow/DurablePg"
import { Layer, Redacted } from "effect"

const store = PgStore.layer({ url: Redacted.make("postgres://app@127.0.0.1:1/app") })
const shared = SqlStore.layer({})
if (typeof DurablePg.layerSingle !== "function" || DurableRuns.DurableRuns.key !== "@effect-zapier/workflow/DurableRuns") {
  throw new Error("the workflow entry points did not load")
}
if (!Layer.isLayer(store) || !Layer.isLayer(shared) || typeof openConnect !== "function") {
  throw new Error("an entry point did not load")
}

// internal/ is not part of the API: neither the types nor Node resolve it.
const refused: Array<string> = []
${internalOf
  .map(
    (name) => `// @ts-expect-error ${name} is not exported
await import("${name}").then(
  () => undefined,
  (e: { code?: string }) => e.code === "ERR_PACKAGE_PATH_NOT_EXPORTED" && refused.push("${name}")
)`
  )
  .join("\n")}
if (refused.length !== ${internalOf.length}) throw new Error(\`internal/ resolved: only \${refused.join(", ")} refused\`)
console.log(\`entry points ok: sql and workflow roots and PostgreSQL entry points without SQLite, connect, \${refused.length} internal/ paths refused\`)
`
)

const tsconfigs = {
  "tsconfig.nodenext.json": { module: "NodeNext", moduleResolution: "NodeNext", outDir: "out" },
  "tsconfig.bundler.json": { module: "ESNext", moduleResolution: "bundler", noEmit: true }
}
for (const [file, options] of Object.entries(tsconfigs)) {
  fs.writeFileSync(
    path.join(app, file),
    JSON.stringify(
      {
        compilerOptions: {
          strict: true,
          target: "ES2022",
          lib: ["ES2022", "DOM", "DOM.Iterable"],
          types: ["node"],
          skipLibCheck: true,
          ...options
        },
        include: ["src"]
      },
      null,
      2
    )
  )
  step(`tsc --strict -p ${file}`, () => {
    const out = run(path.join(app, "node_modules/.bin/tsc"), ["-p", file, "--listFiles"], { cwd: app })
    const ours = out.split("\n").filter((f) => f.includes("node_modules/@effect-zapier/"))
    if (ours.some((f) => !f.includes("/dist/")))
      fail(`tsc resolved @effect-zapier sources outside dist/:\n${ours.join("\n")}`)
    process.stdout.write(`  0 errors (${ours.length} declaration files of @effect-zapier/* checked)\n`)
  })
}

const runNode = (file, expect) =>
  step(`node out/${file}`, () => {
    const out = run(process.execPath, [path.join("out", file)], { cwd: app, timeout: 120_000 })
    process.stdout.write(out.replace(/^/gm, "  "))
    for (const pattern of expect) if (!pattern.test(out)) fail(`node out/${file}: no line matching ${pattern}`)
  })

runNode("readme.js", [/Hello from effect-zapier/])
runNode("main.js", [/run \S+ succeeded/, /^Result: /m])
runNode("entrypoints.js", [/entry points ok/])

if (keep) process.stdout.write(`\nscratch app kept at ${app}\n`)
else fs.rmSync(scratch, { recursive: true, force: true })
process.stdout.write(
  `\npack check passed in ${((performance.now() - started) / 1000).toFixed(1)} s (${timings.join(", ")})\n`
)
