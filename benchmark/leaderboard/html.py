"""HTML pages of the leaderboards: `<out>/index.html` and `<out>/<dataset>/index.html`.

Static, self-contained pages: inline CSS, a few lines of inline JavaScript that sort a table when its header is
clicked, relative links to the plots, no CDN, so they work from file:// as well as from any web server. The
body records how many images loaded (`data-images-loaded` / `data-images-total`) so a headless browser test
can tell the plots are visible.
"""
from __future__ import annotations

from dataclasses import replace
from html import escape as _esc
from pathlib import Path
from typing import Any, Optional

from zoo.fileio import atomic_write_text

from .boards import DESCRIPTIONS, Board, BoardRow, Value
from .entries import safe_name
from .markdown import README_TOP, damage_share

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1280px;
 padding:0 20px 40px;color:#1d232b;background:#fff}
h1{font-size:24px;margin:22px 0 4px}h2{font-size:19px;margin:30px 0 8px;border-bottom:1px solid #d8dee4;
 padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
nav{margin:6px 0 14px;color:#57606a}nav a{margin-right:14px}a{color:#0b5cad;text-decoration:none}
a:hover{text-decoration:underline}p.lead{color:#57606a;max-width:900px}
table{border-collapse:collapse;margin:6px 0 12px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d8dee4;padding:4px 9px;text-align:right;white-space:nowrap}
th{background:#f3f5f7;cursor:pointer;user-select:none}th.l,td.l{text-align:left}
th[data-dir=asc]::after{content:" \\25B2";font-size:10px}th[data-dir=desc]::after{content:" \\25BC";font-size:10px}
tbody tr:nth-child(even){background:#fafbfc}tbody tr:hover{background:#eef5ff}
td.best{font-weight:600}span.ci{color:#57606a;font-size:12px}.flag{color:#b35900;font-weight:600}.partial td{color:#57606a}
figure{display:inline-block;margin:8px 16px 8px 0;vertical-align:top}figcaption{color:#57606a;font-size:12px}
img.plot{max-width:100%;border:1px solid #d8dee4}img.thumb{max-width:520px;border:1px solid #d8dee4}
.card{border:1px solid #d8dee4;border-radius:6px;padding:6px 16px 12px;margin:14px 0}
code{background:#f3f5f7;padding:1px 4px;border-radius:3px}.muted{color:#57606a}
.scroll{overflow-x:auto;max-width:100%}table.entries td{white-space:normal;max-width:340px;vertical-align:top}
"""

_JS = """
(function () {
  function key(cell) { return cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent.trim(); }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.title = "click to sort";
      th.addEventListener("click", function () {
        var asc = th.getAttribute("data-dir") !== "asc";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("data-dir"); });
        th.setAttribute("data-dir", asc ? "asc" : "desc");
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          if (x === "" || y === "") { return (x === "") - (y === ""); }
          var nx = Number(x), ny = Number(y);
          var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  window.addEventListener("load", function () {
    var imgs = Array.prototype.slice.call(document.images);
    var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
    document.body.setAttribute("data-images-loaded", ok.length);
    document.body.setAttribute("data-images-total", imgs.length);
    document.body.setAttribute("data-tables", document.querySelectorAll("table.sortable").length);
  });
})();
"""


def _page(title: str, nav: str, body: list[str]) -> str:
    return "\n".join(["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                      '<meta name="viewport" content="width=device-width, initial-scale=1">',
                      f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
                      f"<h1>{_esc(title)}</h1>", f"<nav>{nav}</nav>", *body,
                      f"<script>{_JS}</script>", "</body></html>", ""])


def _num_cell(board: Board, v: Optional[Value], best: bool = False) -> str:
    """A value with its 95% interval (sorting uses the value)."""
    value = None if v is None else v.value
    data = "" if value is None else f"{value * board.style['scale']:.6g}"
    cls = ' class="best"' if best else ""
    text = _esc(board.fmt(value))
    if v is not None and v.interval is not None and value is not None:
        text += f' <span class="ci">({_esc(board.fmt(v.interval[0]))}–{_esc(board.fmt(v.interval[1]))})</span>'
    return f'<td data-v="{data}"{cls}>{text}</td>'


def _board_table(board: Board, rows: list[BoardRow], ranked: bool) -> str:
    heads = (["#"] if ranked else []) + ["Model", "Family", "n"] + board.headers()
    heads += [] if ranked else ["Why not ranked"]
    left = {"Model", "Family", "Why not ranked"}
    out = ['<div class="scroll">',
           f'<table class="sortable board" data-target="{board.target}" data-suite="{_esc(board.suite)}">',
           "<thead><tr>" + "".join(f'<th class="{"l" if h in left else ""}">{_esc(h)}</th>' for h in heads)
           + "</tr></thead><tbody>"]
    columns = [[r.clean.value for r in rows]] + [[(r.values + r.extra)[j].value for r in rows]
                                                 for j in range(len(board.headers()) - 1)]
    best = [max((v for v in col if v is not None), default=None) for col in columns]
    for i, r in enumerate(rows, 1):
        flag = (f' <span class="flag" title="evidence of broken gradients: {_esc("; ".join(r.flags))}">&#9888;'
                f'</span>' if r.flags else "")
        flag += (f' <span class="flag" title="ran an earlier definition of the suite: {_esc("; ".join(r.changes))}">'
                 f'&#8224;</span>' if r.changes else "")
        cells = [f'<td data-v="{i}">{_esc(r.rank_label)}</td>'] if ranked else []
        cells += [f'<td class="l"><a href="entries/{_esc(safe_name(r.model))}.json">{_esc(r.model)}</a>{flag}</td>',
                  f'<td class="l">{_esc(r.family)}</td>', f"<td>{r.n}</td>"]
        vals = [r.clean] + r.values + r.extra
        cells += [_num_cell(board, v, ranked and len(rows) > 1 and v.value is not None and v.value == best[j])
                  for j, v in enumerate(vals)]
        if not ranked:
            cells.append(f'<td class="l">{_esc(r.partial_reason)}</td>')
        out.append(f'<tr class="{"ranked" if ranked else "partial"}">' + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _transfer_html(board: Board) -> str:
    """Per model and budget: clean, the white-box reference row, the worst transfer row and the share of the
    white-box damage the transfer attacker gets."""
    ref = board.reference_attack
    heads = ["Model", "Budget", "Clean", f"{ref} (white-box)", f"worst over {', '.join(board.ranked_attacks)}",
             "share of the white-box damage"]
    out = ['<div class="scroll">', f'<table class="sortable transfer" data-target="{board.target}">',
           "<thead><tr>" + "".join(f'<th class="{"l" if h in ("Model", "Budget") else ""}">{_esc(h)}</th>'
                                   for h in heads) + "</tr></thead><tbody>"]
    for r in board.ranked + board.partial:
        for j, b in enumerate(board.budgets):
            white = r.details.get(ref, [Value()] * len(board.budgets))[j]
            out.append(f'<tr><td class="l">{_esc(r.model)}</td><td class="l">{_esc(board.budget_label(b))}</td>'
                       + _num_cell(board, Value(r.clean.value)) + _num_cell(board, white)
                       + _num_cell(board, r.values[j]) + f"<td>{_esc(damage_share(r.clean, white, r.values[j]))}</td>"
                       + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _figures(body: list[str], figures: dict[str, dict[str, str]], group: str, title: str, anchor: str,
             caption) -> None:
    """A section of figures, only when there are some (boards without them stay as they were)."""
    if not figures.get(group):
        return
    body.append(f'<h2 id="{anchor}">{_esc(title)}</h2>')
    for name, rel in sorted(figures[group].items()):
        body.append(f'<figure><img class="plot" src="{_esc(rel)}" alt="{_esc(caption(name))}">'
                    f"<figcaption>{_esc(caption(name))}</figcaption></figure>")


def _source(card: dict[str, Any]) -> str:
    srcs = card.get("mim_sources") or []
    url = next((s.get("url") or s.get("page") for s in srcs if s.get("url") or s.get("page")), None)
    if url:
        return f'<a href="{_esc(url)}">{_esc(card.get("paper") or url.rsplit("/", 1)[-1])}</a>'
    if card.get("paper"):
        return _esc(card["paper"])
    return "trained with <code>zoo.train</code>" if card.get("local_dir") else "–"


def _entries_table(entries: list[dict[str, Any]]) -> str:
    heads = ["Model", "Family", "Description", "Source", "Defenses", "Checkpoint sha256", "Runs", "Date", "torch"]
    out = ['<div class="scroll"><table class="sortable entries"><thead><tr>' + "".join(f'<th class="l">{h}</th>' for h in heads)
           + "</tr></thead><tbody>"]
    for e in entries:
        card = e["card"]
        sha = "<br>".join(f'{_esc(role)}: <code title="{_esc(c["sha256"])}">{_esc(c["sha256"][:12])}</code>'
                          for role, c in sorted(e["checkpoints"].items()))
        runs = "<br>".join(f"{_esc(s)}: n={r['settings']['n']}{'' if r['complete'] else ' (partial)'}"
                           for s, r in sorted(e["runs"].items()))
        last = max(e["runs"].values(), key=lambda r: r["date"])
        cells = [f'<a href="entries/{_esc(safe_name(e["model"]))}.json">{_esc(e["model"])}</a>',
                 _esc(card.get("family", "")), _esc(card.get("description", "")), _source(card),
                 _esc(", ".join(card.get("defenses") or []) or "none"), sha, runs, _esc(last["date"][:10]),
                 _esc(last["versions"].get("torch", ""))]
        out.append("<tr>" + "".join(f'<td class="l">{c}</td>' for c in cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def write_dataset_page(folder: Path, dataset: str, entries: list[dict[str, Any]], boards: list[Board],
                       figures: dict[str, dict[str, str]], notes: dict[str, str]) -> Path:
    """`<out>/<dataset>/index.html`: ranked and partial tables, robustness curves, reconstruction grids, entries."""
    nav = ('<a href="../index.html">&larr; all datasets</a><a href="reconstruction.csv">reconstruction.csv</a>'
           '<a href="downstream.csv">downstream.csv</a><a href="reconstruction.md">reconstruction.md</a>'
           '<a href="downstream.md">downstream.md</a><a href="entries/">entries/</a>')
    body = [f'<p class="lead">{len(entries)} model{"s" if len(entries) != 1 else ""} on {_esc(dataset)}. Tables are '
            "generated from the JSON entries; click a column header to sort. Partial entries (part of the "
            "evaluation set) are listed under each table, not ranked. &#9888; marks a run with evidence of broken "
            "gradients (a black-box attack winning on too many samples, zero gradients, randomness).</p>"]
    for target in ("reconstruction", "downstream"):
        mine = [b for b in boards if b.target == target]
        body.append(f'<h2 id="{target}">{_esc(mine[0].style["title"] if mine else target.title())}</h2>')
        body.append(f'<p class="muted">{_esc(DESCRIPTIONS[target])}</p>')
        if not mine:
            body.append("<p><em>No results yet.</em></p>")
        for b in mine:
            body.append(f"<h3>Suite <code>{_esc(b.suite)}</code> &middot; {_esc(b.style['label'])}</h3>")
            scope = f"; evaluated on {b.subset}" if b.subset else ""
            if b.reference is not None and not b.ranked_attacks:
                body.append(f'<p class="muted">Ranked by the worst case at {_esc(b.budget_label(b.reference))}'
                            f"{_esc(scope)}; 95% intervals in brackets; =: shares the rank above.</p>")
            elif b.reference is not None or b.is_mean:
                columns = ("each severity's column is the mean over the corruptions (heat maps below)" if b.is_mean
                           else f"each budget's column is the per-sample worst case over "
                                f"{', '.join(b.ranked_attacks)}; the white-box {b.reference_attack} is beside it below")
                body.append(f'<p class="muted">Ranked by {_esc(b.ranking_rule())}{_esc(scope)}; {_esc(columns)}; '
                            f"95% intervals in brackets; =: shares the rank above.</p>")
            body.append(_board_table(b, b.ranked, True) if b.ranked else "<p><em>No complete entries yet.</em></p>")
            if b.partial:
                body.append('<p class="muted">Not ranked (part of the set, or no per-sample outcomes):</p>')
                body.append(_board_table(b, b.partial, False))
            if b.ranked_attacks and b.reference_attack and (b.ranked or b.partial):
                body.append(f'<p class="muted">Transfer against white-box: how much of the white-box '
                            f"{_esc(b.reference_attack)} damage the transfer attacker gets without the target "
                            f"model.</p>")
                body.append(_transfer_html(b))
    body.append('<h2 id="curves">Robustness curves</h2>')
    for suite, rel in sorted(figures.get("curves", {}).items()):
        body.append(f'<figure><img class="plot" src="{_esc(rel)}" alt="robustness curves, suite {_esc(suite)}">'
                    f"<figcaption>Suite {_esc(suite)}: accuracy and masked PSNR against eps, one line per model "
                    f"(dashed: partial).</figcaption></figure>")
    if not figures.get("curves"):
        body.append("<p><em>No curves yet.</em></p>")
    body.append('<h2 id="examples">Reconstruction under attack</h2>')
    for model, rel in sorted(figures.get("grids", {}).items()):
        body.append(f'<figure><img class="plot" src="{_esc(rel)}" alt="reconstruction grid of {_esc(model)}">'
                    f"<figcaption>{_esc(model)}</figcaption></figure>")
    if not figures.get("grids"):
        body.append("<p><em>No examples saved.</em></p>")
    _figures(body, figures, "transfer", "Transfer against white-box", "transfer",
             lambda suite: f"Suite {suite}: clean, white-box and transfer rows per budget, one group per model")
    _figures(body, figures, "universal", "Universal perturbations", "universal",
             lambda model: f"{model}: the universal perturbations (magnified) and their effect on the first images")
    _figures(body, figures, "heatmaps", "Corruptions", "corruptions",
             lambda model: f"{model}: accuracy and masked PSNR per corruption and severity")
    body.append('<h2 id="entries">Entries</h2>')
    body.append(_entries_table(entries))
    if notes:
        body.append("<h3>Notes</h3><ul>" + "".join(f"<li><code>{_esc(k)}</code>: {_esc(v)}</li>"
                                                   for k, v in sorted(notes.items())) + "</ul>")
    path = Path(folder) / "index.html"
    atomic_write_text(path, _page(f"mimbench leaderboard: {dataset}", nav, body))
    return path


def write_index_page(out: Path, summary: dict[str, tuple[list[Board], int]]) -> Path:
    """`<out>/index.html`: per dataset, the top rows of each ranked board and its first robustness plot."""
    body = ['<p class="lead">Adversarial robustness of masked image models: how far attacks degrade the '
            "reconstructions of MAE, SimMIM and BEiT models, and the accuracy of the classifiers fine-tuned from "
            "them. Each dataset page has the full sortable tables, the plots and the entries.</p>"]
    for ds, (boards, count) in sorted(summary.items()):
        body.append(f'<div class="card"><h2><a href="{_esc(ds)}/index.html">{_esc(ds)}</a></h2>')
        body.append(f'<p class="muted">{count} model{"s" if count != 1 else ""}</p>')
        for b in boards:
            short = replace(b, ranked=b.ranked[:README_TOP], partial=[])
            body.append(f"<h3>{_esc(b.style['title'])}, suite <code>{_esc(b.suite)}</code> &middot; "
                        f"{_esc(b.style['label'])}</h3>")
            table = _board_table(short, short.ranked, True) if short.ranked else "<p><em>No complete entry yet.</em></p>"
            body.append(table.replace('href="entries/', f'href="{_esc(ds)}/entries/'))
            more = len(b.ranked) - README_TOP
            rest = ([f"{more} more ranked"] if more > 0 else []) + ([f"{len(b.partial)} not ranked"] if b.partial
                                                                    else [])
            if rest:
                body.append(f'<p class="muted"><a href="{_esc(ds)}/index.html#{b.target}">'
                            f"{', '.join(rest)} &rarr;</a></p>")
        plot = Path(out) / ds / "plots"
        first = sorted(plot.glob("curves_*.png"))[:1] if plot.is_dir() else []
        for p in first:
            body.append(f'<figure><img class="thumb" src="{_esc(ds)}/plots/{_esc(p.name)}" '
                        f'alt="robustness curves on {_esc(ds)}"></figure>')
        body.append("</div>")
    if not summary:
        body.append("<p><em>No entries yet.</em></p>")
    path = Path(out) / "index.html"
    atomic_write_text(path, _page("mimbench leaderboards", "", body))
    return path


__all__ = ["write_dataset_page", "write_index_page"]
