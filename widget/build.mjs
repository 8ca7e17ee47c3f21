// Builds the widget into dist/ (served by the civicmap server under /widget/ and /embed.js):
//   dist/embed.js               tiny loader pasted by cities (<script src=".../embed.js" data-campaign=...>)
//   dist/civicmap.js            our app + <civicmap-map> custom element (classic script, IIFE): the
//                               campaign, the form, the district picker, the results; no map code
//   dist/civicmap-map.js        the map, loaded lazily by civicmap.js with import() once the form is
//                               shown: an ES module with MapLibre GL JS and our MapView (src/map.ts)
//   dist/maplibre-gl-worker.js  MapLibre's worker (ES module worker), loaded by civicmap-map.js
//   dist/maplibre-gl.css        MapLibre's stylesheet, linked into the shadow root with the map
//   dist/demo.css               stylesheet of demo.html (kept out of the HTML so a strict CSP works)
//   dist/admin.js, admin.css    the staff console (admin.html, served at /admin): src/admin/; its maps
//                               import civicmap-map.js like the widget does (no second MapLibre)
//   dist/*.gz                   gzipped copies of the files above, served to clients that accept gzip
// and .build/lib.mjs (ESM bundle of the pure logic, for the unit tests; not shipped).
import * as esbuild from 'esbuild';
import { mkdirSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');
const ml = join(root, 'node_modules/maplibre-gl/dist');
mkdirSync(dist, { recursive: true });
mkdirSync(join(root, '.build'), { recursive: true });

const common = { bundle: true, minify: true, legalComments: 'none', target: ['es2020'], logLevel: 'warning' };

await Promise.all([
  esbuild.build({ ...common, entryPoints: [join(root, 'src/embed.ts')], outfile: join(dist, 'embed.js'), format: 'iife' }),
  esbuild.build({ ...common, entryPoints: [join(root, 'src/main.ts')], outfile: join(dist, 'civicmap.js'), format: 'iife', sourcemap: true }),
  // civicmap.js stays a classic script (cities paste <script src=".../civicmap.js">, no type=module);
  // it imports this module by its absolute URL, next to itself, when the form is on screen.
  // civicmap.js points MapLibre at its worker (maplibregl.setWorkerUrl) with the same base.
  esbuild.build({
    entryPoints: [join(root, 'src/map.ts')], outfile: join(dist, 'civicmap-map.js'), bundle: true, format: 'esm',
    minify: true, legalComments: 'inline', logLevel: 'error', target: ['es2020'],
    banner: { js: '/* MapLibre GL JS ' + JSON.parse(readFileSync(join(root, 'node_modules/maplibre-gl/package.json'), 'utf8')).version + ' | BSD-3-Clause | https://github.com/maplibre/maplibre-gl-js */' },
  }),
  esbuild.build({ ...common, entryPoints: [join(root, 'src/admin/main.ts')], outfile: join(dist, 'admin.js'), format: 'iife', sourcemap: true }),
  esbuild.build({ entryPoints: [join(root, 'src/lib/index.ts')], outfile: join(root, '.build/lib.mjs'), bundle: true, format: 'esm', platform: 'neutral', logLevel: 'warning' }),
]);
copyFileSync(join(ml, 'maplibre-gl-worker.mjs'), join(dist, 'maplibre-gl-worker.js'));
copyFileSync(join(ml, 'maplibre-gl.css'), join(dist, 'maplibre-gl.css'));
copyFileSync(join(root, 'demo.css'), join(dist, 'demo.css'));
copyFileSync(join(root, 'admin.css'), join(dist, 'admin.css'));

// A gzipped copy of each file served under /widget/, sent by the server (ServeDir's
// precompressed_gzip) to clients that accept gzip: compressed once here, never per request.
for (const f of ['civicmap.js', 'civicmap-map.js', 'maplibre-gl-worker.js', 'maplibre-gl.css', 'demo.css', 'admin.js', 'admin.css']) {
  writeFileSync(join(dist, f + '.gz'), gzipSync(readFileSync(join(dist, f)), { level: 9 }));
}

const sizes = {};
for (const f of ['embed.js', 'civicmap.js', 'civicmap-map.js', 'maplibre-gl-worker.js', 'maplibre-gl.css', 'admin.js']) {
  const buf = readFileSync(join(dist, f));
  sizes[f] = { bytes: buf.length, gzip: gzipSync(buf, { level: 9 }).length };
}
writeFileSync(join(root, '.build/sizes.json'), JSON.stringify(sizes, null, 2));
if (!process.argv.includes('--quiet')) {
  for (const [f, s] of Object.entries(sizes)) console.log(`${f.padEnd(24)} ${String(s.bytes).padStart(9)} B  ${String(s.gzip).padStart(8)} B gzip`);
}
const ours = sizes['civicmap.js'].gzip + sizes['embed.js'].gzip;
if (ours > 40 * 1024) { console.error(`widget code is ${ours} B gzipped, over the 40 KiB budget`); process.exit(1); }
