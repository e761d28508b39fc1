"""The bench's outputs: the table on stdout and the chart (PNG through matplotlib, or a plain
SVG drawn here when matplotlib cannot be installed)."""
from __future__ import annotations

import subprocess
import sys
from html import escape


def print_table(report: dict) -> None:
    m = report["machine"]
    print(f"\nhutch {m['hutch']} ({m['hutch_commit']}) on {m['os']}, kernel {m['kernel']}, "
          f"{m['cpus']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, cgroup {m['cgroup_mode']}")
    print(f"{report['runs']} timed runs per contender, alternating in rotated order, after one warm-up round\n")
    print(f"{'row':<4} {'contender':<40} {'median ms':>10} {'min ms':>9} {'max ms':>9} "
          f"{'cpu ms':>8}")
    for row in report["rows"]:
        head = f"{row['id']:<4} {row.get('title', '')}"
        if row.get("leaked_containers"):
            head += f"\n     LEAKED containers (hutch rm -f failed): {row['leaked_containers']}"
        if row["status"] in ("skipped", "failed") and "contenders" not in row and "metrics" not in row:
            print(f"{head}\n     {row['status'].upper()}: {row.get('reason', '')}")
            continue
        print(head + (f"   [goal: {row['goal']}]" if row.get("goal") else ""))
        _print_contenders(row.get("contenders", []))
        for k, v in row.get("metrics", {}).items():
            print(f"     {k:<40} {v}")
        for k, v in row.get("ratios", {}).items():
            print(f"     ratio {k}: {v}")
        if row.get("reason"):
            print(f"     {row['status'].upper()}: {row['reason']}")
        if row.get("leaks"):
            print(f"     LEAKED cgroups (removed): {row['leaks']}")
        sub = row.get("ps100")
        if sub:
            print("     hutch ps -a with 100 containers:")
            if sub["status"] == "ok":
                _print_contenders(sub["contenders"])
                for k, v in sub.get("ratios", {}).items():
                    print(f"     ratio {k}: {v}")
            else:
                print(f"     {sub['status'].upper()}: {sub.get('reason', '')}")


def _print_contenders(contenders):
    for c in contenders:
        name = c["name"] + (" (anchor)" if c.get("anchor") else "")
        if c["status"] == "ok":
            print(f"     {name:<40} {c['median_ms']:>10.2f} {c['min_ms']:>9.2f} "
                  f"{c['max_ms']:>9.2f} {c['cpu_median_ms']:>8.2f}")
        else:
            print(f"     {name:<40} {c['status'].upper()}: {c.get('reason', '')}")


def _panels(report: dict) -> list[tuple[str, str, list[tuple[str, float, float, float, bool]]]]:
    """(title, unit, [(label, value, low, high, is_anchor)]) for each row with figures."""
    panels = []
    for row in report["rows"]:
        bars = [(c["name"], c["median_ms"], c["min_ms"], c["max_ms"], c.get("anchor", False))
                for c in row.get("contenders", []) if c["status"] == "ok"]
        if bars:
            panels.append((f"{row['id']}. {row.get('title', '')}", "ms (median, min-max)", bars))
        sub = row.get("ps100") or {}
        bars = [(c["name"], c["median_ms"], c["min_ms"], c["max_ms"], c.get("anchor", False))
                for c in sub.get("contenders", []) if c["status"] == "ok"]
        if bars:
            panels.append((f"{row['id']}. `ps -a` with 100 containers", "ms (median, min-max)", bars))
        numeric = [(k, float(v)) for k, v in row.get("metrics", {}).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)
                   and k not in ("bytes", "lines", "host processes kept")]
        if numeric:
            unit = "MB/s" if row["id"] == 6 else "KiB" if row["id"] == 4 else "ms"
            panels.append((f"{row['id']}. {row.get('title', '')}", unit,
                           [(k, v, v, v, "anchor" in k) for k, v in numeric]))
    return panels


def ensure_matplotlib() -> bool:
    """matplotlib is the [bench] extra; install it into this venv when it is missing."""
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        pass
    p = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "matplotlib>=3.5"], capture_output=True, text=True)
    if p.returncode != 0:
        print("bench: matplotlib not installable, drawing an SVG instead", file=sys.stderr)
        return False
    return True


def write_chart(report: dict, stem: str) -> str:
    panels = _panels(report)
    if ensure_matplotlib():
        return _png(report, panels, stem + ".png")
    return _svg(report, panels, stem + ".svg")


def _png(report, panels, path) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = max(len(panels), 1)
    height = 1.0 + sum(0.8 + 0.35 * len(bars) for _, _, bars in panels)
    fig, axes = plt.subplots(n, 1, figsize=(9, max(height, 2.0)), squeeze=False)
    for ax, (title, unit, bars) in zip(axes[:, 0], panels):
        labels = [b[0] for b in bars]
        values = [b[1] for b in bars]
        err = [[b[1] - b[2] for b in bars], [b[3] - b[1] for b in bars]]
        colors = ["#9e9e9e" if b[4] else "#1f77b4" for b in bars]
        ax.barh(labels, values, xerr=err, color=colors, capsize=3)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_xlabel(unit, fontsize=8)
        ax.tick_params(labelsize=8)
        for y, b in enumerate(bars):   # the median, written past the max whisker
            ax.text(b[3], y, f"  {b[1]:.1f}", va="center", fontsize=7)
    if not panels:
        axes[0, 0].text(0.5, 0.5, "no row produced figures", ha="center")
    m = report["machine"]
    fig.suptitle(f"hutch {m['hutch']} ({m['hutch_commit']}) - {report['date'][:10]} - "
                 f"{m['cpus']} CPUs, kernel {m['kernel']}  (grey: anchors)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _svg(report, panels, path) -> str:
    width, bar_h, left = 900, 18, 300
    y = 40
    parts = []
    m = report["machine"]
    heading = f"hutch {m['hutch']} ({m['hutch_commit']}) - {report['date'][:10]} (grey: anchors)"
    parts.append(f'<text x="10" y="20" font-size="13">{escape(heading)}</text>')
    for title, unit, bars in panels:
        parts.append(f'<text x="10" y="{y + 12}" font-size="12" font-weight="bold">{escape(title)} [{escape(unit)}]</text>')
        y += 20
        top = max(b[3] for b in bars) or 1
        for label, value, low, high, anchor in bars:
            w = (width - left - 80) * value / top
            color = "#9e9e9e" if anchor else "#1f77b4"
            parts.append(f'<text x="10" y="{y + 13}" font-size="11">{escape(label)}</text>'
                         f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h - 4}" fill="{color}"/>'
                         f'<text x="{left + w + 4:.1f}" y="{y + 13}" font-size="11">{value:.1f}</text>')
            y += bar_h
        y += 10
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y + 10}" '
           f'font-family="sans-serif">{"".join(parts)}</svg>\n')
    with open(path, "w") as f:
        f.write(svg)
    return path
