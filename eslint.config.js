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
    files: ["pkg/**/*.ts", "api/**/*.ts", "cmd/**/*.ts"],
    ignores: ["**/*.test.ts"],
    rules: { "@typescript-eslint/no-explicit-any": "error" },
  },
);
