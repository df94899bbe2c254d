import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// `npm run dev` serves the page with hot reload and sends API calls to a hub on
// HUB_URL (default http://127.0.0.1:8080); `npm run build` writes dist/, which the hub
// serves itself (setting `web_root`).
export default defineConfig({
  plugins: [vue()],
  server: {
    proxy: { '/api': process.env.HUB_URL ?? 'http://127.0.0.1:8080' },
  },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
})
