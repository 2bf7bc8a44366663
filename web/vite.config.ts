import { defineConfig } from "vitest/config";
import preact from "@preact/preset-vite";

// `npm run dev` serves the client with hot reload against a gateway on :8787.
const gateway = process.env.BESTCHAT_GATEWAY ?? "http://127.0.0.1:8787";

export default defineConfig({
  plugins: [preact()],
  build: {
    target: "es2022",
    sourcemap: false,
    // The budget is 200 KB gzipped; warn well before it.
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: {
      "/api": gateway,
      "/dev": gateway,
      "/config.json": gateway,
      "/ws": { target: gateway.replace(/^http/, "ws"), ws: true },
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
