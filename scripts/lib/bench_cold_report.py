"""Tables (Markdown) and a chart (PNG) of a scripts/bench-cold run (bench_cold.py's JSON).

  bench_cold_report.py RESULTS.json [--chart OUT.png] [--floor NAME] [--peer NAME] [--target NAME]

Medians per variant and CPU share, the ratios of init to the floor's and of the first
answer to the peer's, and the issue's two targets checked for `--target`.
"""

import argparse
import json
import statistics


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("results")
    parser.add_argument("--chart")
    parser.add_argument("--floor", default="lambda_http hello (floor)")
    parser.add_argument("--peer", default="Node peer")
    parser.add_argument("--target", default="verify-otp, env secrets")
    parser.add_argument("--title", default="Cold start under a fake Lambda Runtime API")
    args = parser.parse_args()

    with open(args.results) as f:
        data = json.load(f)
    results = data["results"]
    variants = data["variants"]
    shares = data["shares"]

    def runs(variant, share):
        return [r for r in results if r["variant"] == variant and r["share"] == share]

    def med(variant, share, key):
        return median([r[key] for r in runs(variant, share)])

    warm = data.get("events", 1) > 1
    for share in shares:
        label = "full CPU" if share == "full" else f"{share} MB share ({round(int(share) / 1769 * 100, 1)} % of a core)"
        print(f"\n{label}, median of {data['runs']} runs:\n")
        floor_init = med(args.floor, share, "init_ms")
        peer_answer = med(args.peer, share, "answer_ms")
        print("| function | init | first answer | init / floor | answer / Node peer | first request | warm request | peak RSS |")
        print("|---|---|---|---|---|---|---|---|")
        for variant in variants:
            if not runs(variant, share):
                continue
            init = med(variant, share, "init_ms")
            answer = med(variant, share, "answer_ms")
            rss = med(variant, share, "peak_rss_mib")
            first = med(variant, share, "first_ms")
            warm_ms = med(variant, share, "warm_ms") if warm else None
            ratio_floor = f"{init / floor_init:.1f}x" if floor_init else "n/a"
            ratio_peer = f"1/{peer_answer / answer:.0f}" if peer_answer else "n/a"
            warm_text = f"{warm_ms:.2f} ms" if warm_ms is not None else "n/a"
            print(
                f"| {variant} | {init:.1f} ms | {answer:.1f} ms | {ratio_floor} | {ratio_peer} "
                f"| {first:.2f} ms | {warm_text} | {rss:.1f} MiB |"
            )
        if floor_init and peer_answer and runs(args.target, share):
            init = med(args.target, share, "init_ms")
            answer = med(args.target, share, "answer_ms")
            print(
                f"\ntargets ({args.target}): init {init / floor_init:.1f}x the floor (at most 8x: "
                f"{'met' if init <= 8 * floor_init else 'NOT met'}); first answer 1/{peer_answer / answer:.0f} "
                f"of the Node peer's (at most 1/20: {'met' if answer * 20 <= peer_answer else 'NOT met'})"
            )

    if args.chart:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(len(shares), 2, figsize=(12, 3.2 * len(shares) + 0.8), squeeze=False)
        for row, share in enumerate(shares):
            for col, (key, name) in enumerate([("init_ms", "init"), ("answer_ms", "first answer")]):
                ax = axes[row][col]
                present = [v for v in variants if runs(v, share)]
                data_ = [[r[key] for r in runs(v, share)] for v in present]
                ax.boxplot(data_, vert=False, tick_labels=present, showfliers=False)
                for i, values in enumerate(data_, start=1):
                    ax.scatter(values, [i] * len(values), s=9, alpha=0.6, color="tab:blue", zorder=3)
                ax.set_xscale("log")
                ax.set_xlabel("ms from spawn (log scale)")
                share_label = "full CPU" if share == "full" else f"{share} MB CPU share"
                ax.set_title(f"{name}, {share_label}", fontsize=10)
                ax.grid(True, axis="x", which="both", alpha=0.3)
                if col == 1:
                    ax.set_yticklabels([])
        fig.suptitle(f"{args.title} ({data['runs']} runs each, interleaved)")
        fig.tight_layout()
        fig.savefig(args.chart, dpi=110)


if __name__ == "__main__":
    main()
