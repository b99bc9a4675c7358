// Bundles the /demo page (src/demo.js with hls.js from node_modules, src/demo.css) with esbuild into
// media_service/api/demo_static/, which the API serves (media_service/api/routes_demo.py). Run through
// scripts/build-web, which installs the locked packages first. Nothing is fetched at run time.
import { copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const out = here("../media_service/api/demo_static/");

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await esbuild.build({
  entryPoints: [here("src/demo.js"), here("src/demo.css")],
  outdir: out,
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  legalComments: "none", // hls.js is Apache-2.0: its LICENSE is copied next to the bundle
  logLevel: "warning",
});
await copyFile(here("src/demo.html"), `${out}demo.html`);
await copyFile(here("node_modules/hls.js/LICENSE"), `${out}hls.js.LICENSE.txt`);
// A build output, never committed: the folder ignores itself.
await writeFile(`${out}.gitignore`, "*\n");
console.log(`built ${out}`);
