// Styles of the widget, applied inside its shadow root (via adoptedStyleSheets when available, so that a
// strict CSP on the host page does not block them). Only px/em units: rem would follow the host page.
export const CSS = `
:host { display: block; }
.cm {
  all: initial;
  display: block;
  container-type: inline-size;
  box-sizing: border-box;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "DejaVu Sans", sans-serif;
  font-size: 16px; line-height: 1.5; color: #1f2933; background: #ffffff;
  text-align: left; -webkit-text-size-adjust: 100%;
  border: 1px solid #d5dbe1; border-radius: 10px; overflow: hidden;
}
.cm.cm-page { border: 0; border-radius: 0; }
.cm *, .cm *::before, .cm *::after { box-sizing: border-box; }
.cm [hidden] { display: none !important; }
.cm h1, .cm h2, .cm h3, .cm p, .cm ul, .cm fieldset, .cm figure { margin: 0; padding: 0; }
.cm ul { list-style: none; }
.cm a { color: #0b5cad; text-decoration: underline; text-underline-offset: 2px; }
.cm a:hover { color: #06406f; }
.cm :focus { outline: none; }
.cm :focus-visible, .cm .cm-focus-ring:focus { outline: 3px solid #0b5cad; outline-offset: 2px; border-radius: 3px; }
.cm input:focus-visible, .cm select:focus-visible, .cm textarea:focus-visible { outline-offset: 1px; }
.cm .cm-hp { position: absolute !important; left: -10000px !important; top: auto; width: 1px; height: 1px; overflow: hidden; }
.cm .cm-sr { position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0 0 0 0); clip-path: inset(50%); white-space: nowrap; border: 0; }

.cm-head { padding: 18px 20px 14px; border-bottom: 1px solid #e4e7eb; background: #f8fafc; }
.cm-title { font-size: 1.375em; line-height: 1.25; font-weight: 700; color: #102a43; }
.cm-meta { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; margin-top: 6px !important; font-size: 0.875em; color: #486581; }
.cm-chip { display: inline-flex; align-items: center; gap: 6px; padding: 2px 10px; border-radius: 999px; font-weight: 600; background: #e3f8ef; color: #05603a; }
.cm-chip::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: currentColor; }
.cm-chip.cm-closed { background: #f1f3f5; color: #3e4c59; }
.cm-closednote { margin-top: 10px !important; padding: 8px 12px; border-left: 4px solid #486581; background: #eef2f6; color: #243b53; max-width: 75ch; }
.cm-desc { margin-top: 8px !important; color: #334e68; max-width: 75ch; }

.cm-main { display: grid; grid-template-columns: minmax(0, 1fr); grid-template-rows: auto auto auto 1fr; grid-template-areas: "map" "panel" "results" "story"; align-items: start; }
.cm-mapcol { position: relative; min-width: 0; grid-area: map; }
.cm-panel { grid-area: panel; }
.cm-results { grid-area: results; }
.cm-story { grid-area: story; }
.cm-mapbox { position: relative; }
.cm-mapwait { position: absolute; inset: 0; margin: 0; display: flex; align-items: center; justify-content: center; padding: 16px; text-align: center; color: #243b53; }
.cm-mapwait[hidden] { display: none; }
.cm-map { width: 100%; height: var(--cm-map-h, 440px); background: #eef1f4; }
.cm-map .maplibregl-canvas:focus-visible, .cm-map .maplibregl-canvas:focus { outline: 3px solid #0b5cad; outline-offset: -3px; }
.cm-map .maplibregl-ctrl-attrib { font-size: 12px; background: rgba(255,255,255,0.88); color: #1f2933; }
.cm-map .maplibregl-ctrl-attrib a { color: #1f2933; }
.cm-info {
  position: absolute; left: 10px; top: 10px; z-index: 2; max-width: calc(100% - 70px);
  padding: 8px 12px; border-radius: 8px; background: rgba(255,255,255,0.96); box-shadow: 0 1px 4px rgba(16,42,67,0.25);
  font-size: 0.875em; line-height: 1.35; pointer-events: none;
}
.cm-info strong { display: block; color: #102a43; }
.cm-info span { display: block; color: #334e68; }
.cm-cursor { width: 26px; height: 26px; border-radius: 50%; border: 3px solid #102a43; background: rgba(255,255,255,0.35); box-shadow: 0 0 0 2px #fff; pointer-events: none; }
.cm-cursor::before, .cm-cursor::after { content: ""; position: absolute; background: #102a43; }
.cm-cursor::before { left: 9px; top: -9px; width: 2px; height: 38px; }
.cm-cursor::after { top: 9px; left: -9px; height: 2px; width: 38px; }
.cm-nomap { margin: 16px 20px 0 !important; padding: 12px 14px; border-left: 4px solid #486581; background: #f0f4f8; color: #243b53; }
.cm-under { padding: 10px 20px 14px; display: flex; flex-direction: column; gap: 8px; border-bottom: 1px solid #e4e7eb; }
.cm-help { font-size: 0.875em; color: #486581; }
.cm-legend, .cm-legend-items { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 14px; font-size: 0.8125em; color: #334e68; }
.cm-legend-title { font-weight: 600; color: #102a43; margin-right: 4px; }
.cm-legend-note { flex-basis: 100%; font-size: 0.8125em; color: #486581; }
.cm-legend li { display: inline-flex; align-items: center; gap: 6px; }
.cm-swatch { display: inline-block; width: 18px; height: 14px; border: 1px solid #33475b; border-radius: 2px; }
.cm-swatch-withheld { background: repeating-linear-gradient(135deg, #8a939b 0 2px, #e6e8ea 2px 6px); }
.cm-swatch-demand { width: 14px; border-radius: 50%; background: #9a3412; border-color: #fff; box-shadow: 0 0 0 1px #9a3412; }

.cm-panel { padding: 18px 20px 20px; min-width: 0; }
.cm-panel h3, .cm-results h3 { font-size: 1.125em; line-height: 1.3; color: #102a43; margin-bottom: 6px; }
.cm-note { font-size: 0.875em; color: #52606d; }
.cm-form { display: flex; flex-direction: column; gap: 16px; margin-top: 10px; }
.cm-field { display: flex; flex-direction: column; gap: 4px; }
.cm-label, .cm-fieldset > legend { font-weight: 600; color: #102a43; padding: 0; }
.cm-req { color: #b42318; font-weight: 700; }
.cm-fieldset { border: 0; display: flex; flex-direction: column; gap: 8px; min-width: 0; }
.cm .cm-box { border: 1px solid #d5dbe1; border-radius: 8px; padding: 12px 14px 14px; background: #fbfcfd; }
.cm-box > legend { float: left; width: 100%; margin-bottom: 6px; }
.cm-box > legend + * { clear: left; }
.cm-hint { font-size: 0.875em; color: #52606d; }
.cm input[type=text], .cm input[type=search], .cm select, .cm textarea {
  font: inherit; font-size: 16px; color: #1f2933; background: #fff; width: 100%; max-width: 100%;
  min-height: 44px; padding: 8px 10px; border: 1px solid #7b8794; border-radius: 6px; margin: 0;
}
.cm input.cm-short { max-width: 12em; }
.cm textarea { min-height: 88px; resize: vertical; }
.cm [aria-invalid=true] { border-color: #b42318 !important; border-width: 2px !important; }
.cm-choices { display: flex; flex-direction: column; gap: 2px; }
.cm-check { display: flex; align-items: flex-start; gap: 10px; min-height: 44px; padding: 8px 0; cursor: pointer; }
.cm-check input { width: 22px; height: 22px; margin: 1px 0 0; flex: none; accent-color: #0b5cad; }
.cm-check span { flex: 1; }
.cm-error { color: #b42318; font-weight: 600; font-size: 0.9375em; display: flex; gap: 6px; }
.cm-error::before { content: "!"; flex: none; display: inline-flex; align-items: center; justify-content: center; width: 20px; height: 20px; margin-top: 1px; border-radius: 50%; background: #b42318; color: #fff; font-size: 13px; }
.cm-locstatus { font-weight: 600; color: #102a43; }
.cm-locstatus.cm-none { font-weight: 400; color: #52606d; }
.cm-row { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-end; }
.cm-row > .cm-field { flex: 1 1 9em; min-width: 0; }
.cm-form details { border-top: 1px solid #e4e7eb; padding-top: 8px; }
.cm-form summary { cursor: pointer; color: #0b5cad; font-weight: 600; min-height: 32px; display: list-item; }
.cm-form details[open] > summary { margin-bottom: 8px; }
.cm-btn {
  font: inherit; font-size: 16px; font-weight: 600; line-height: 1.2; display: inline-flex; align-items: center; justify-content: center; gap: 8px;
  min-height: 44px; padding: 10px 18px; border-radius: 6px; border: 2px solid #0b5cad; background: #0b5cad; color: #fff; cursor: pointer; margin: 0; text-align: center;
}
.cm-btn:hover { background: #084a8c; border-color: #084a8c; }
.cm-btn[disabled] { background: #52606d; border-color: #52606d; cursor: progress; }
.cm-btn.cm-secondary { background: #fff; color: #0b5cad; }
.cm-btn.cm-secondary:hover { background: #eef4fb; }
.cm-btn.cm-small { min-height: 40px; padding: 7px 12px; font-size: 15px; }
.cm-btn.cm-danger { background: #b42318; border-color: #b42318; }
.cm-btn.cm-danger:hover { background: #912018; border-color: #912018; }
.cm-linkbtn { font: inherit; background: none; border: 0; padding: 0; color: #b42318; text-decoration: underline; cursor: pointer; text-align: left; }
.cm-spinner { width: 16px; height: 16px; border-radius: 50%; border: 2px solid rgba(255,255,255,0.5); border-top-color: #fff; animation: cm-spin 0.8s linear infinite; }
@keyframes cm-spin { to { transform: rotate(360deg); } }
@media (prefers-reduced-motion: reduce) { .cm-spinner { animation: none; } }
.cm-summary { border: 2px solid #b42318; border-radius: 8px; padding: 12px 14px; background: #fef3f2; }
.cm-summary h4 { margin: 0 0 6px; font-size: 1em; color: #b42318; }
.cm-summary ul { display: flex; flex-direction: column; gap: 4px; }
.cm-alert { border-left: 4px solid #b42318; background: #fef3f2; padding: 10px 12px; color: #7a271a; }
.cm-success { border: 2px solid #12b76a; border-radius: 10px; background: #ecfdf3; padding: 16px; display: flex; flex-direction: column; gap: 10px; color: #054f31; }
.cm-success h3 { color: #054f31; }
.cm-success .cm-editlink { word-break: break-all; font-size: 0.875em; }
.cm-follow { display: flex; flex-direction: column; gap: 8px; margin-top: 14px; }
.cm-follow h3, .cm-follow h4 { font-size: 1em; color: #102a43; }
.cm-followform { display: flex; flex-direction: column; gap: 10px; }
.cm input[type=email] {
  font: inherit; font-size: 16px; color: #1f2933; background: #fff; width: 100%; max-width: 100%;
  min-height: 44px; padding: 8px 10px; border: 1px solid #7b8794; border-radius: 6px; margin: 0;
}
.cm-followstatus:empty { display: none; }
.cm-followbox { margin-top: 12px; border-top: 1px solid #e4e7eb; padding-top: 8px; }
.cm-followbox > summary { cursor: pointer; color: #0b5cad; font-weight: 600; min-height: 32px; display: list-item; }
.cm-results-list li { margin: 2px 0; }
.cm-georesults { display: flex; flex-direction: column; gap: 4px; }
.cm-georesults button { font: inherit; text-align: left; background: #fff; border: 1px solid #cbd2d9; border-radius: 6px; padding: 8px 10px; min-height: 44px; cursor: pointer; color: #1f2933; }
.cm-georesults button:hover { background: #f0f4f8; }
.cm-addrbox { position: relative; }
.cm-addrlist { list-style: none; margin: 4px 0 0; padding: 4px; border: 1px solid #cbd2d9; border-radius: 6px; background: #fff; max-height: 18em; overflow-y: auto; }
.cm-addropt { padding: 8px 10px; min-height: 44px; box-sizing: border-box; display: flex; align-items: center; border-radius: 4px; cursor: pointer; color: #1f2933; }
.cm-addropt:hover { background: #f0f4f8; }
.cm-addropt[aria-selected="true"] { background: #1f4e79; color: #fff; outline: 2px solid #1f4e79; }
.cm-actions { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; }
.cm-counter { font-size: 0.8125em; color: #52606d; }

.cm-results { padding: 18px 20px 8px; border-top: 1px solid #e4e7eb; }
.cm-tablewrap { overflow-x: auto; }
.cm table { border-collapse: collapse; width: 100%; font-size: 0.9375em; margin: 6px 0 0; }
.cm caption { text-align: left; font-size: 0.875em; color: #52606d; padding-bottom: 6px; }
.cm th, .cm td { text-align: left; padding: 7px 10px; border-bottom: 1px solid #e4e7eb; vertical-align: middle; }
.cm thead th { background: #f0f4f8; color: #243b53; font-weight: 600; border-bottom: 2px solid #bcccdc; }
.cm td.cm-num, .cm th.cm-num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.cm tbody th { font-weight: 400; }
.cm thead th.cm-rate { white-space: normal; min-width: 7em; }
.cm tfoot th, .cm tfoot td { font-weight: 700; border-bottom: 0; border-top: 2px solid #bcccdc; }
.cm tr.cm-updated th, .cm tr.cm-updated td { background: #fff7d6; }
.cm tbody th .cm-swatch { margin-right: 10px; vertical-align: -2px; }
.cm-withheld-text { color: #52606d; font-style: italic; }

.cm-story { padding: 18px 20px 8px; border-top: 1px solid #e4e7eb; }
.cm-story h3 { font-size: 1.125em; line-height: 1.3; color: #102a43; margin-bottom: 10px; }
.cm-timeline { list-style: none; margin: 0; padding: 0 0 0 22px; border-left: 2px solid #bcccdc; margin-left: 6px; max-width: 75ch; }
.cm-story-item { position: relative; padding: 0 0 16px; }
.cm-story-dot { position: absolute; left: -30px; top: 3px; width: 12px; height: 12px; border-radius: 50%; background: #1f4e79; border: 2px solid #fff; box-shadow: 0 0 0 2px #1f4e79; }
.cm-story-update .cm-story-dot { background: #fff; }
.cm-story-upcoming .cm-story-dot { background: #fff; box-shadow: 0 0 0 2px #7b8794; }
.cm-story-meta { font-size: 0.8125em; color: #486581; }
.cm-story-kind { font-weight: 600; text-transform: uppercase; letter-spacing: 0.03em; }
.cm-story-title { font-size: 1em; line-height: 1.35; color: #102a43; margin: 2px 0 4px; }
.cm-story-text { color: #334e68; margin: 0 0 6px !important; white-space: pre-line; }
.cm-story a { color: #0b5cad; }
.cm-story a:focus-visible { outline: 3px solid #0b5cad; outline-offset: 2px; }
.cm-story-feed { font-size: 0.875em; margin: 0 0 8px !important; }

.cm-foot { padding: 10px 20px 14px; font-size: 0.8125em; color: #52606d; display: flex; flex-wrap: wrap; gap: 4px 16px; justify-content: space-between; }
.cm-foot a { color: #334e68; }
.cm-stack { display: flex; flex-direction: column; gap: 14px; align-items: flex-start; max-width: 60ch; }
.cm-stack:empty { display: none; }
.cm-edit-status:empty { display: none; }
.cm-edit { display: flex; flex-direction: column; gap: 16px; max-width: 760px; }
.cm-edit .cm-form { margin-top: 0; }
.cm-edit-map { border: 1px solid #d5dbe1; border-radius: 6px; overflow: hidden; }
.cm-facts { display: flex; flex-direction: column; gap: 2px; color: #334e68; font-size: 0.9375em; }
.cm-erase { border-top: 1px solid #e4e7eb; padding-top: 16px; max-width: none; }
.cm-erase h2 { font-size: 1.125em; line-height: 1.3; color: #102a43; }
.cm-state { padding: 28px 20px; color: #334e68; display: flex; flex-direction: column; gap: 12px; align-items: flex-start; }

@container (min-width: 860px) {
  .cm-main.cm-with-panel { grid-template-columns: minmax(0, 1fr) minmax(320px, 380px); grid-template-areas: "map panel" "results panel" "story panel"; grid-template-rows: auto auto 1fr; }
  .cm-main.cm-with-panel .cm-panel { border-left: 1px solid #e4e7eb; align-self: stretch; }
  .cm-main.cm-with-panel .cm-results { border-top: 0; }
  .cm-main.cm-with-panel .cm-story { border-top: 1px solid #e4e7eb; }
}
@container (max-width: 520px) {
  .cm-head, .cm-panel, .cm-results, .cm-story, .cm-under, .cm-foot { padding-left: 14px; padding-right: 14px; }
  .cm-map { height: var(--cm-map-h-narrow, 340px); }
  .cm-title { font-size: 1.25em; }
  .cm th, .cm td { padding: 6px 6px; }
}
`;
