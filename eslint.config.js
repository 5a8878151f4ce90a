import js from "@eslint/js";
import tseslint from "typescript-eslint";

const TESTS = ["**/*.test.ts", "**/testing/**"];
const LIB_NOT_DRIVER = {
  group: ["**/pkg/**", "**/cmd/**"],
  message: "lib/ must not import the driver (pkg/) or cmd/.",
};
const NOT_CMD = { group: ["**/cmd/**"], message: "pkg/ must not import cmd/." };
const NOT_EMULATOR = {
  group: ["**/emulator/**"],
  message: "only tests, benchmarks and the emulate command use the emulated host.",
};
/** Folders with an index.ts (their names are unique): others import its exports, not its files. */
const THROUGH_INDEX = [
  "cni",
  "nri",
  "ttrpc",
  "kubeletplugin",
  "prepare",
  "podnetwork",
  "emulator",
].map((folder) => ({
  group: [`**/${folder}/*`, `!**/${folder}/index.js`],
  message: `import ${folder}/ through its index.js.`,
}));
const restrictImports = (patterns) => ({ "no-restricted-imports": ["error", { patterns }] });

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      // noUncheckedIndexedAccess makes every indexed read optional; `!` after a checked
      // bound is the readable way to say "present".
      "@typescript-eslint/no-non-null-assertion": "off",
    },
  },
  {
    // The library is strictly typed; tests may poke at loosely typed API objects.
    files: ["lib/**/*.ts", "pkg/**/*.ts", "api/**/*.ts", "cmd/**/*.ts"],
    ignores: ["**/*.test.ts"],
    rules: { "@typescript-eslint/no-explicit-any": "error" },
  },
  // The directions of dependencies (ARCHITECTURE.md), in production code: lib/ knows
  // nothing of the driver; nothing reaches into cmd/; only tests, benchmarks and `emulate`
  // use the emulated host, so the driver cannot tell it from a real one; and a folder with
  // an index.ts is entered through it. (One config per set of files: a later
  // no-restricted-imports replaces an earlier one, so each lists all its patterns.)
  {
    files: ["lib/**/*.ts"],
    ignores: TESTS,
    rules: restrictImports([LIB_NOT_DRIVER, ...THROUGH_INDEX]),
  },
  {
    files: ["pkg/**/*.ts"],
    ignores: [...TESTS, "pkg/emulator/**"],
    rules: restrictImports([NOT_CMD, NOT_EMULATOR, ...THROUGH_INDEX]),
  },
  {
    files: ["cmd/**/*.ts"],
    ignores: TESTS,
    rules: restrictImports(THROUGH_INDEX),
  },
  {
    // An ES import of node:http reads every export, and the lazy WebSocket, CloseEvent and
    // MessageEvent ones load Node's bundled undici into the daemon (docs/benchmarks.md).
    files: ["api/**/*.ts", "lib/**/*.ts", "pkg/**/*.ts", "cmd/**/*.ts"],
    ignores: TESTS,
    rules: {
      "no-restricted-syntax": [
        "error",
        {
          selector: "ImportDeclaration[importKind!='type'][source.value=/^(node:)?http$/]",
          message:
            'take node:http from process.getBuiltinModule("node:http"); an ES import of it loads undici.',
        },
      ],
    },
  },
);
