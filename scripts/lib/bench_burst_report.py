"""Tables (Markdown) and a chart (PNG) of a scripts/bench-burst run (bench_burst's JSON lines).

  bench_burst_report.py RESULTS.json [--chart OUT.png]

One row per design, caps and concurrency; then the issue's targets checked for the
design of this tree ("blind reservations") at 200 at a time.
"""

import argparse
import json

OURS = "blind reservations"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("results")
    parser.add_argument("--chart")
    args = parser.parse_args()
    with open(args.results) as f:
        rows = json.load(f)

    print("| design | caps | at a time | sent | 429 | 503 | conflicts / sent | units in a full shard "
          "| documents read / sent | round trips / sent | send p50 | send p99 | sends/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["concurrency"], r["caps"] != "on", r["design"] == OURS)):
        print(f"| {r['design']} | {r['caps']} | {r['concurrency']} | {r['sent']:,} / {r['sign_ins']:,} "
              f"| {r['rate_limited']} | {r['unavailable_503']} | {r['conflicts_per_sent']:.2f} | {r.get('overdrawn', 0)} "
              f"| {r['documents_read_per_sent']:.1f} | {r['round_trips_per_sent']:.2f} "
              f"| {r['send_p50_ms']:.0f} ms | {r['send_p99_ms']:.0f} ms | {r['sends_per_s']:.0f} |")

    def find(design, caps, w):
        return next((r for r in rows if r["design"] == design and r["caps"] == caps and r["concurrency"] == w), None)

    print()
    for w in sorted({r["concurrency"] for r in rows}):
        on, off = find(OURS, "on", w), find(OURS, "off", w)
        if not on or not off:
            continue
        share = on["sends_per_s"] / off["sends_per_s"] if off["sends_per_s"] else 0
        checks = [
            ("no 503", on["unavailable_503"] == 0),
            ("conflicts / sent <= 0.1", on["conflicts_per_sent"] <= 0.1),
            ("documents read / sent <= 10", on["documents_read_per_sent"] <= 10),
            (f"caps on at {share:.0%} of caps off (>= 80 %)", share >= 0.8),
        ]
        print(f"- {w} at a time: " + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in checks))

    if args.chart:
        chart(rows, args.chart)


def chart(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ws = sorted({r["concurrency"] for r in rows})
    series = [(d, c) for d in sorted({r["design"] for r in rows}, key=lambda d: d == OURS) for c in ("on", "off")]
    colours = {("before (8+4 shards read whole)", "on"): "#d62728", ("before (8+4 shards read whole)", "off"): "#ff9896",
               (OURS, "on"): "#1f77b4", (OURS, "off"): "#aec7e8"}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    width = 0.8 / max(len(series), 1)
    panels = [("sends_per_s", "allowed sends per second"), ("unavailable_503", "503 (gave up on contention)"),
              ("documents_read_per_sent", "documents read per allowed send")]
    for ax, (key, title) in zip(axes, panels):
        for k, (design, caps) in enumerate(series):
            values = []
            for w in ws:
                r = next((r for r in rows if r["design"] == design and r["caps"] == caps and r["concurrency"] == w), None)
                values.append(r[key] if r else 0)
            xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(ws))]
            ax.bar(xs, values, width, label=f"{design}, caps {caps}", color=colours.get((design, caps)))
        ax.set_xticks(range(len(ws)))
        ax.set_xticklabels([f"{w} at a time" for w in ws])
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    n = rows[0]["sign_ins"] if rows else 0
    fig.suptitle(f"{n:,} sign-ins (send + verify) on the Firestore emulator, default caps on vs off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"\nchart: {path}")


if __name__ == "__main__":
    main()
