"""The load report's stylesheet, inlined into every report: system fonts only, so nothing is fetched."""

CSS = """
:root { --ink: #111827; --muted: #6b7280; --line: #e5e7eb; --panel: #f9fafb; --pass: #15803d; --fail: #b91c1c; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 20px 24px 32px; }
header { display: flex; gap: 20px; align-items: stretch; margin-bottom: 16px; }
h1 { margin: 0 0 8px; font-size: 22px; word-break: break-word; }
h2 { margin: 28px 0 10px; font-size: 16px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.verdict { flex: none; min-width: 150px; border-radius: 8px; color: #fff; font-size: 30px; font-weight: 700;
           display: flex; flex-direction: column; justify-content: center; align-items: center; padding: 10px 18px; }
.verdict small { font-size: 12px; font-weight: 500; opacity: .9; }
.verdict.pass { background: var(--pass); } .verdict.fail { background: var(--fail); }
.verdict.none { background: var(--muted); }
.facts { display: flex; flex-wrap: wrap; gap: 6px 22px; margin: 0; }
.facts div { min-width: 0; }
.facts dt { color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: .04em; }
.facts dd { margin: 0; font-weight: 600; word-break: break-all; }
.totals { display: grid; grid-template-columns: repeat(9, 1fr); gap: 8px; }
.totals div { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 6px 10px; }
.totals span { display: block; color: var(--muted); font-size: 11px; text-transform: uppercase; }
.totals b { font-size: 17px; font-variant-numeric: tabular-nums; white-space: nowrap; }
.charts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 14px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px 4px; }
figcaption { font-weight: 600; margin-bottom: 2px; }
svg.chart { display: block; width: 100%; height: auto; font-size: 11px; }
svg.chart .grid { stroke: var(--line); } svg.chart .axis, svg.chart .tickmark { stroke: #9ca3af; }
svg.chart .tick { fill: var(--muted); font-variant-numeric: tabular-nums; }
svg.chart .label { fill: var(--muted); font-size: 11px; }
svg.chart .legend text { fill: var(--ink); font-size: 12px; }
svg.chart .series { fill: none; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
svg.chart .limit { stroke-width: 1.5; stroke-dasharray: 5 3; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); font-size: 12px; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; } td.mid, th.mid { text-align: center; }
td { word-break: break-word; }
.badge { display: inline-block; min-width: 44px; text-align: center; border-radius: 10px; padding: 1px 8px;
         font-size: 12px; font-weight: 700; color: #fff; text-transform: uppercase; }
.badge.pass { background: var(--pass); } .badge.fail { background: var(--fail); }
.no-data { color: var(--muted); font-style: italic; }
figure .no-data { padding: 40px 0; text-align: center; }
.artifacts { margin: 0; padding-left: 18px; } code { font-size: 12px; }
footer { margin-top: 28px; color: var(--muted); font-size: 12px; }
@media (max-width: 900px) { .charts { grid-template-columns: 1fr; } .totals { grid-template-columns: repeat(3, 1fr); }
                            header { flex-direction: column; } }
"""
