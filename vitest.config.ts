import * as os from "node:os"
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    projects: ["packages/*/vitest.config.ts", "examples/*/vitest.config.ts"],
    // Two test files at a time even on a 2-core machine (vitest's default is one less than the cores, so one there:
    // the suite took 800 s alone). The suite is checked green beside another full suite, which is harsher.
    maxWorkers: Math.max(2, os.availableParallelism() - 1)
  }
})
