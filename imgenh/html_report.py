"""The HTML run report: one self-contained page, one row per image, before/after side by side.

The page is built from the data of the JSON report (:func:`imgenh.report.write_report`),
where each image may also carry ``before`` / ``after`` figure dicts (:mod:`imgenh.quality`)
and ``thumbs: {"before": data-uri, "after": data-uri}``. Everything is inline: thumbnails
as ``data:`` URIs, the rows as a JSON array the page's own small script renders in chunks
(so 10,000 images stay responsive), no network access, no external scripts. Rows carry
``data-key="<output key>"``; columns sort on click; the URL hash sets sort, filter and
figure mode (``#sort=brightness&dir=desc&filter=failed&mode=after``).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from imgenh.io import atomic_write
from imgenh.quality import FIGURE_NAMES, FIGURES, deltas, figures

THUMB_QUALITY = 75
DATA_URI_PREFIXES = ("data:image/jpeg;base64,", "data:image/png;base64,", "data:image/webp;base64,")
# Smallest "typical change" per figure for the change score (so a figure that barely moves
# in a run does not make every tiny change look huge).
CHANGE_FLOOR = {
    "brightness": 0.005,
    "contrast": 0.005,
    "entropy": 0.02,
    "clipped_shadows": 0.5,
    "clipped_highlights": 0.5,
    "cast_degrees": 0.5,
    "colourfulness": 1.0,
    "sharpness": 1.0,
    "noise_sigma": 0.05,
}


def thumbnail_data_uri(pixels: np.ndarray, max_side: int = 160, alpha: np.ndarray | None = None) -> str:
    """A small JPEG of the image as a ``data:`` URI (alpha shown over a checkerboard).

    Parameters
    ----------
    pixels : ndarray
        (H, W), (H, W, 3) or (H, W, 4); uint8, uint16 or float32 in [0, 1].
    max_side : int
        Longest side of the thumbnail in pixels (never enlarged).
    alpha : ndarray, optional
        Alpha plane, when it travels beside the pixels.
    """
    from imgenh.preview import display_bgr, fit

    h, w = pixels.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    small = fit(pixels, max(1, round(w * scale)), max(1, round(h * scale)))
    ok, data = cv2.imencode(".jpg", display_bgr(small, alpha), [cv2.IMWRITE_JPEG_QUALITY, THUMB_QUALITY])
    if not ok:  # pragma: no cover - JPEG encoding of uint8 BGR does not fail
        raise ValueError("cannot encode a thumbnail")
    return DATA_URI_PREFIXES[0] + base64.b64encode(data.tobytes()).decode("ascii")


def image_extras(
    before: np.ndarray,
    after: np.ndarray | None = None,
    *,
    before_alpha: np.ndarray | None = None,
    after_alpha: np.ndarray | None = None,
    thumbs: bool = True,
    max_side: int = 160,
) -> dict[str, Any]:
    """What one image adds to its report entry: ``before`` / ``after`` figures and ``thumbs``.

    Call it in the worker with the decoded input and the pipeline's output (pixels only;
    nothing here keeps them). ``after`` is None for an image that failed or was skipped.
    """
    extras: dict[str, Any] = {"before": figures(before)}
    if after is not None:
        extras["after"] = figures(after)
    if thumbs:
        extras["thumbs"] = {"before": thumbnail_data_uri(before, max_side, before_alpha)}
        if after is not None:
            extras["thumbs"]["after"] = thumbnail_data_uri(after, max_side, after_alpha)
    return extras


def values_text(values: list[dict[str, Any]]) -> str:
    """Operator-reported values as one line: ``1 white_balance: illuminant R0.41 G0.33 B0.26; ...``."""
    from imgenh.preview import HIDDEN_VALUES, format_value

    parts = []
    for report in values or []:
        shown = [format_value(k, v) for k, v in report.items() if k not in HIDDEN_VALUES]
        shown = [text for text in shown if text]
        if shown:
            parts.append(f"{int(report.get('step', 0)) + 1} {report.get('op', '?')}: {', '.join(shown)}")
    return "; ".join(parts)


def change_scores(rows: list[dict[str, Any]]) -> list[float | None]:
    """How unusual each image's change is: the largest ``|delta| / typical |delta|`` over figures.

    The typical change of a figure is its median ``|after - before|`` over the images that
    have both (at least :data:`CHANGE_FLOOR`), so 1 means "changed as much as usual" and 5
    "five times more than the typical image of this run". None without both figure sets.
    """
    changes = [deltas(r["before"], r["after"]) if r.get("before") and r.get("after") else None for r in rows]
    typical = {}
    for name in FIGURE_NAMES:
        values = [abs(c[name]) for c in changes if c and name in c]
        typical[name] = max(float(np.median(values)) if values else 0.0, CHANGE_FLOOR[name])
    return [
        None if c is None else round(max((abs(v) / typical[k] for k, v in c.items()), default=0.0), 3)
        for c in changes
    ]


def _thumb(value: Any) -> str:
    return value if isinstance(value, str) and value.startswith(DATA_URI_PREFIXES) else ""


def page_rows(images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows the page's script renders: plain data, only what the table shows."""
    scores = change_scores(images)
    rows = []
    for image, score in zip(images, scores, strict=True):
        before, after = image.get("before") or {}, image.get("after") or {}
        thumbs = image.get("thumbs") or {}
        rows.append(
            {
                "key": str(image.get("key", "")),
                "source": str(image.get("source", "")),
                "status": str(image.get("status", "")),
                "reason": str(image.get("reason", "")),
                "seconds": image.get("seconds"),
                "change": score,
                "before": before,
                "after": after,
                "delta": deltas(before, after),
                "values": values_text(image.get("values", [])),
                "notes": "; ".join(map(str, image.get("notes", []))),
                "thumbs": {"before": _thumb(thumbs.get("before")), "after": _thumb(thumbs.get("after"))},
            }
        )
    return rows


def _script_json(data: Any) -> str:
    """JSON safe inside a ``<script type="application/json">`` element (no ``</script>``, no ``<!--``)."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False, default=str)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _finite(data: Any) -> Any:
    """``data`` with NaN and infinities replaced by None (JSON has no spelling for them)."""
    if isinstance(data, float):
        return data if np.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return data


STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{padding:12px 16px;background:#263238;color:#eceff1}
header h1{font-size:18px;margin:0 0 4px}
.totals span{display:inline-block;margin:4px 14px 0 0}
.totals b{font-size:18px}.failed b{color:#ff8a80}
.warnings{color:#ffe082;margin:4px 0 0}
.controls{position:sticky;top:0;background:#eceff1;padding:8px 16px;z-index:2;border-bottom:1px solid #cfd8dc}
.controls label{margin-right:14px}
table{border-collapse:collapse;width:100%}
th{position:sticky;top:41px;background:#cfd8dc;cursor:pointer;text-align:left;padding:4px 6px;
   font-weight:600;white-space:nowrap;z-index:1}
th.sorted-asc::after{content:" \\25B2"}th.sorted-desc::after{content:" \\25BC"}
td{padding:3px 6px;border-bottom:1px solid #e0e0e0;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.num small{display:block;color:#607d8b}
.up{color:#1565c0}.down{color:#e65100}
img.t{max-width:120px;max-height:90px;display:block;background:#ddd}
tr.failed td{background:#ffebee}
td.values,td.reason{font-size:12px;min-width:240px;max-width:520px}
#more{padding:12px 16px;color:#607d8b}
#error{display:none;background:#c62828;color:#fff;padding:8px 16px}
"""

# The page's script: rows come from the inline JSON; a chunk is rendered at a time.
SCRIPT = r"""
(function () {
  "use strict";
  var CHUNK = 300;
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var rows = data.rows, figs = data.figures;
  var body = document.querySelector("#images tbody"), more = document.getElementById("more");
  var state = {sort: "", dir: "asc", filter: "all", mode: "delta"}, view = [], shown = 0;
  function num(v) { return typeof v === "number" && isFinite(v) ? v : null; }
  function fmt(v, signed) {
    if (num(v) === null) return "";
    var a = Math.abs(v), t = a >= 100 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
    return signed && v > 0 ? "+" + t : t;
  }
  function key(r, col) {
    if (figs.indexOf(col) >= 0) return num((r[state.mode] || {})[col]);
    var v = r[col];
    return typeof v === "number" ? num(v) : String(v === undefined || v === null ? "" : v).toLowerCase();
  }
  function compare(a, b) {
    var x = key(a, state.sort), y = key(b, state.sort), s = state.dir === "desc" ? -1 : 1;
    if (x === y) return a._i - b._i;
    if (x === null || x === "") return 1;
    if (y === null || y === "") return -1;
    return (x < y ? -1 : 1) * s;
  }
  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }
  function thumb(tr, uri) {
    var td = cell(tr, "");
    if (uri && uri.indexOf("data:image/") === 0) {
      var img = document.createElement("img");
      img.className = "t"; img.loading = "lazy"; img.decoding = "async"; img.alt = ""; img.src = uri;
      td.appendChild(img);
    }
  }
  function figureCell(tr, r, f) {
    var b = (r.before || {})[f], a = (r.after || {})[f], d = (r.delta || {})[f];
    var main = state.mode === "before" ? b : state.mode === "after" ? a : d;
    var td = cell(tr, fmt(main, state.mode === "delta"), "num");
    if (num(d) !== null && d !== 0) td.classList.add(d > 0 ? "up" : "down");
    var small = document.createElement("small");
    small.textContent = num(b) === null ? "" : fmt(b) + (num(a) === null ? "" : " \u2192 " + fmt(a));
    td.appendChild(small);
  }
  function row(r) {
    var tr = document.createElement("tr");
    tr.setAttribute("data-key", r.key);
    if (r.status === "failed") tr.className = "failed";
    thumb(tr, r.thumbs.before); thumb(tr, r.thumbs.after);
    cell(tr, r.key).title = r.source;
    cell(tr, r.status); cell(tr, r.reason, "reason");
    cell(tr, fmt(r.seconds), "num"); cell(tr, fmt(r.change), "num");
    figs.forEach(function (f) { figureCell(tr, r, f); });
    cell(tr, r.values + (r.notes ? " [" + r.notes + "]" : ""), "values");
    return tr;
  }
  function renderMore() {
    var frag = document.createDocumentFragment(), end = Math.min(view.length, shown + CHUNK);
    for (; shown < end; shown++) frag.appendChild(row(view[shown]));
    body.appendChild(frag);
    more.textContent = shown < view.length ? "showing " + shown + " of " + view.length +
      " images: scroll for more" : view.length + " image" + (view.length === 1 ? "" : "s") + " shown";
    document.body.setAttribute("data-rows", String(shown));
  }
  function selected() {
    if (state.filter === "failed") return rows.filter(function (r) { return r.status === "failed"; });
    if (state.filter !== "changed") return rows.slice();
    var scored = rows.filter(function (r) { return num(r.change) !== null; });
    scored.sort(function (a, b) { return b.change - a.change; });
    return scored.slice(0, Math.max(1, Math.ceil(scored.length / 10)));
  }
  function render() {
    view = selected();
    if (state.sort) view.sort(compare);
    body.textContent = ""; shown = 0;
    document.querySelectorAll("th[data-col]").forEach(function (th) {
      th.className = th.getAttribute("data-col") === state.sort ? "sorted-" + state.dir : "";
    });
    document.getElementById("filter").value = state.filter;
    document.getElementById("mode").value = state.mode;
    renderMore();
  }
  function fromHash() {
    var h = location.hash.replace(/^#/, "");
    state = {sort: "", dir: "asc", filter: "all", mode: "delta"};
    h.split("&").forEach(function (part) {
      var kv = part.split("="), k = decodeURIComponent(kv[0] || ""), v = decodeURIComponent(kv[1] || "");
      if (k in state && v) state[k] = v;
    });
    render();
  }
  function toHash() {
    var parts = [];
    Object.keys(state).forEach(function (k) { if (state[k]) parts.push(k + "=" + encodeURIComponent(state[k])); });
    history.replaceState(null, "", "#" + parts.join("&"));
  }
  rows.forEach(function (r, i) { r._i = i; });
  document.querySelector("#images thead").addEventListener("click", function (e) {
    var th = e.target.closest("th[data-col]");
    if (!th) return;
    var col = th.getAttribute("data-col");
    state.dir = state.sort === col && state.dir === "asc" ? "desc" : "asc";
    state.sort = col; toHash(); render();
  });
  document.getElementById("filter").addEventListener("change", function (e) {
    state.filter = e.target.value; toHash(); render();
  });
  document.getElementById("mode").addEventListener("change", function (e) {
    state.mode = e.target.value; toHash(); render();
  });
  window.addEventListener("hashchange", fromHash);
  if ("IntersectionObserver" in window) {
    new IntersectionObserver(function (entries) {
      if (entries[0].isIntersecting && shown < view.length) renderMore();
    }).observe(more);
  }
  fromHash();
  document.body.setAttribute("data-ms", String(Math.round(performance.now())));
  document.body.setAttribute("data-ready", "1");
})();
"""

ERROR_TRAP = (
    "window.addEventListener('error',function(e){var m=String(e.message||e);"
    "document.body.setAttribute('data-error',m);var el=document.getElementById('error');"
    "if(el){el.style.display='block';el.textContent='This page hit an error: '+m;}});"
)


def _summary_html(report: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The header: pipeline, totals, warnings and the mean change of each figure."""
    esc = html.escape
    totals = report.get("totals") or {}
    counts = "".join(
        f'<span class="{name}"><b>{esc(str(totals.get(name, 0)))}</b> {name}</span>'
        for name in ("ok", "skipped", "failed")
    )
    seconds = totals.get("seconds")
    if isinstance(seconds, (int, float)):
        counts += f"<span><b>{seconds:.1f}</b> s</span>"
    means = []
    for name in FIGURE_NAMES:
        changes = [r["delta"][name] for r in rows if name in r["delta"]]
        if changes:
            means.append(f"{esc(name)} {np.mean(changes):+.3g}")
    mean_line = f"<div>mean change: {', '.join(means)}</div>" if means else ""
    warnings = "".join(f"<div>warning: {esc(str(w))}</div>" for w in report.get("warnings") or [])
    about = (
        f"pipeline {esc(str(report.get('pipeline') or '(unnamed)'))} "
        f"&middot; hash {esc(str(report.get('pipeline_hash', '')))} "
        f"&middot; imgenh {esc(str(report.get('imgenh_version', '')))}"
    )
    return (
        f'<header><h1>imgenh report</h1><div>{about}</div><div class="totals">{counts}</div>'
        f'{mean_line}<div class="warnings">{warnings}</div></header>'
    )


def _table_head() -> str:
    definitions = dict(FIGURES)
    columns = [
        ("", "before", "input thumbnail"),
        ("", "after", "output thumbnail"),
        ("key", "image", "output path relative to the output folder (hover: input path)"),
        ("status", "status", "ok, skipped or failed"),
        ("reason", "reason", "why it was skipped or failed"),
        ("seconds", "s", "seconds spent on it"),
        ("change", "change", "largest |change| of a figure / that figure's typical change in this run"),
        *((name, name.replace("_", " "), definitions[name]) for name in FIGURE_NAMES),
        ("values", "operator values", "values the operators reported (illuminant, gains, fitted parameters)"),
    ]
    cells = []
    for col, label, title in columns:
        attr = f' data-col="{col}"' if col else ""
        cells.append(f'<th{attr} title="{html.escape(title)}">{html.escape(label)}</th>')
    return f"<thead><tr>{''.join(cells)}</tr></thead>"


CONTROLS = """<div class="controls">
<label>show <select id="filter"><option value="all">all images</option><option value="failed">failed only</option>
<option value="changed">biggest change (top 10%)</option></select></label>
<label>figures <select id="mode"><option value="delta">change (after - before)</option>
<option value="after">after</option><option value="before">before</option></select></label>
<span>click a column to sort; the address keeps the view (#sort=...&amp;dir=desc)</span></div>"""


def render_html(report: dict[str, Any]) -> str:
    """The report page, as one self-contained HTML document.

    Parameters
    ----------
    report : dict
        The JSON report's document (``imgenh_version``, ``pipeline``, ``pipeline_hash``,
        ``warnings``, ``totals``, ``images``); each image may carry ``before`` / ``after``
        figures and ``thumbs`` (see :func:`image_extras`).

    Returns
    -------
    str
        HTML with inline style, data and script; nothing is fetched over the network.
    """
    rows = page_rows(report.get("images") or [])
    data = _finite({"figures": list(FIGURE_NAMES), "rows": rows})
    title = html.escape(f"imgenh report: {report.get('pipeline') or 'run'}")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
        f"<title>{title}</title><style>{STYLE}</style></head>\n"
        f'<body data-ready="0"><script>{ERROR_TRAP}</script><div id="error"></div>\n'
        f"{_summary_html(report, rows)}\n{CONTROLS}\n"
        f'<table id="images">{_table_head()}<tbody></tbody></table><p id="more"></p>\n'
        "<noscript><p>This report lists its images with a small inline script; enable JavaScript to see them "
        "(the same data is in the JSON report).</p></noscript>\n"
        f'<script type="application/json" id="report-data">{_script_json(data)}</script>\n'
        f"<script>{SCRIPT}</script>\n</body></html>\n"
    )


def make_html_report(report: dict[str, Any], path: str | Path) -> Path:
    """Write :func:`render_html` of ``report`` to ``path`` atomically (UTF-8); returns the path."""
    path = Path(path)
    atomic_write(path, render_html(report).encode("utf-8"))
    return path


def enrich_report(report: dict[str, Any], thumbs: bool = True, max_side: int = 160) -> dict[str, Any]:
    """A copy of a finished run's report with figures and thumbnails read from the files.

    For each image, ``before`` comes from its ``source`` and ``after`` from its ``output``
    when that file can be read; unreadable files are left without figures. Useful for a report
    written without them; a run that has the pixels in hand should use :func:`image_extras`.
    """
    from imgenh.io import ImageError, read_image

    def load(path: str):
        try:
            return read_image(path)
        except (ImageError, OSError):
            return None

    images = []
    for image in report.get("images") or []:
        entry = dict(image)
        before = load(entry.get("source", ""))
        after = load(entry.get("output", "")) if entry.get("status") in ("ok", "skipped") else None
        if before is not None:
            extras = image_extras(
                before.pixels,
                None if after is None else after.pixels,
                before_alpha=before.alpha,
                after_alpha=None if after is None else after.alpha,
                thumbs=thumbs,
                max_side=max_side,
            )
            entry.update(extras)
        images.append(entry)
    return {**report, "images": images}
