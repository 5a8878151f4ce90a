import js from "@eslint/js";
import tseslint from "typescript-eslint";

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
  {
    // The directions of dependencies (ARCHITECTURE.md): lib/ knows nothing of the driver;
    // the driver never reaches into its commands; only tests, benchmarks and `emulate` use
    // the emulated host, so the driver cannot tell it from a real one.
    files: ["lib/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["**/pkg/**", "**/cmd/**"],
              message: "lib/ must not import the driver (pkg/) or cmd/.",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["pkg/**/*.ts"],
    ignores: ["**/*.test.ts", "**/testing/**", "pkg/emulator/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["**/cmd/**"], message: "pkg/ must not import cmd/." },
            {
              group: ["**/emulator/**"],
              message: "only tests, benchmarks and the emulate command use the emulated host.",
            },
          ],
        },
      ],
    },
  },
);
