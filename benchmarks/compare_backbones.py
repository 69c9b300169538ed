"""Training-free token pruning across spiking backbones (issue 21): one table and one plot.

TP-Spikformer claims one training-free pruning method works across spiking transformers. For every
checkpoint given (default: every checkpoint shipped in ``evtrack/data``), this runs
``benchmarks/pruning.py`` (the same evaluation loop as ``evtrack benchmark``, ops counted) on

- the generated test split: dense, the IR criterion at the official-like and default schedules and at
  matched keep ratios 0.8 / 0.65 / 0.5 / 0.35, random and event-density selection as controls, N/K
  compensation and plain pruning without the key/value cache; plus network time dense vs default
  (interleaved calls, ``--threads``);
- the real val split (optional ``--real``): dense and the default schedule;

then prints one Markdown table (AUC with its 95% bootstrap interval, the paired AUC gap to dense with
its interval, PR, tokens kept, transformer SOPs, energy, network ms) and writes
``backbones_pruning.png`` (AUC vs token keep ratio and vs transformer SOPs, one line per backbone).
Each checkpoint's results are cached in ``OUT/<name>_<split>/pruning.json``; ``--reuse`` skips the
runs whose JSON exists, so a long comparison can be split over several sittings.

    python benchmarks/compare_backbones.py --data data/synth --real data/real_val --threads 1
    python benchmarks/compare_backbones.py --checkpoint tiny=src/evtrack/data/tiny.pt \\
        --checkpoint sf=runs/sf/last.pt --data data/synth --reuse
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEST_CONFIGS = ("dense", "ir-0.8", "ir-0.65", "ir-official", "ir-default", "ir-0.5", "ir-0.35", "random-default",
                "density-default", "ir-default-comp", "ir-default-plain")
REAL_CONFIGS = ("dense", "ir-default")
UNIFORM_SWEEP = ("dense", "ir-0.8", "ir-0.65", "ir-0.5", "ir-0.35")  # one keep ratio for every block


def run_pruning(ckpt: str, data: list[str], split: str, configs, out: Path, threads: int, latency: bool,
                reuse: bool, max_sequences: int | None = None) -> dict:
    js = out / "pruning.json"
    if reuse and js.is_file():
        print(f"reusing {js}", file=sys.stderr)
        return json.loads(js.read_text())
    cmd = [sys.executable, str(HERE / "pruning.py"), "--checkpoint", ckpt, "--data", *data, "--split", split,
           "--configs", ",".join(configs), "--threads", str(threads), "--out-dir", str(out)]
    cmd += ["--latency-configs", "dense,ir-default", "--repeats", "60"] if latency else ["--skip-latency"]
    if max_sequences:
        cmd += ["--max-sequences", str(max_sequences)]
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True)
    return json.loads(js.read_text())


def fmt_ci(ci) -> str:
    return f"[{ci[0]:.1f}, {ci[1]:.1f}]" if ci else ""


def table(results: dict[str, dict], real: dict[str, dict]) -> list[str]:
    lines = ["| backbone (config) | pruning | keep | AUC gen. [95% CI] | gap to dense [95% CI] | PR | "
             "tokens | transformer SOPs M (vs dense) | energy mJ | network ms | real val AUC [95% CI] | real gap |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, rep in results.items():
        rows = rep["accuracy"]
        lat = next(iter(rep.get("latency_ms", {}).values()), {})
        d = rows["dense"]
        rr = real.get(name, {}).get("accuracy", {})
        cfg = rep.get("config_name", "")
        for n, r in rows.items():
            gap = ""
            if n != "dense" and "auc_gap_ci95" in r:
                gap = f"{d['auc'] - r['auc']:+.2f} {fmt_ci(r['auc_gap_ci95'])}"
            ms = f"{lat[n]['backbone']:.2f}" if n in lat else ""
            rv = rr.get(n)
            rv_auc = f"{rv['auc']:.2f} {fmt_ci(rv.get('auc_ci95'))}" if rv else ""
            rv_gap = ""
            if rv and n != "dense" and "dense" in rr:
                rv_gap = f"{rr['dense']['auc'] - rv['auc']:+.2f} {fmt_ci(rv['auc_gap_ci95'])}"
            lines.append(
                f"| {name} ({cfg}) | {n} | {100 * r['tokens_kept_frac']:.0f}% | {r['auc']:.2f} {fmt_ci(r.get('auc_ci95'))} | "
                f"{gap} | {r['pr']:.2f} | {r['tokens_kept']:.0f} | {r['transformer_sops'] / 1e6:.2f} "
                f"({r['transformer_sops'] / d['transformer_sops']:.2f}) | {r['energy_mj']:.4f} | {ms} | {rv_auc} | {rv_gap} |")
    return lines


def answers(results: dict[str, dict]) -> list[str]:
    """The issue's questions, answered from the measured rows (no judgement beyond the numbers)."""
    out = []
    drops = {}
    for name, rep in results.items():
        rows = rep["accuracy"]
        d, p = rows["dense"], rows.get("ir-default")
        if not p:
            continue
        drops[name] = d["auc"] - p["auc"]
        cut = 1 - p["transformer_sops"] / d["transformer_sops"]
        ok = cut >= 0.40 and drops[name] <= 1.5
        out.append(f"{name}: default schedule keeps {100 * p['tokens_kept_frac']:.0f}% of tokens, transformer SOPs "
                   f"-{100 * cut:.1f}%, AUC drop {drops[name]:+.2f} (goal: SOPs >= 40% lower at a drop <= 1.5): "
                   f"{'PASS' if ok else 'FAIL'}")
        for variant, what in (("ir-default-comp", "N/K compensation"), ("ir-default-plain", "no key/value cache "
                                                                                           "(plain pruning)")):
            if variant in rows:
                out.append(f"  {what}: AUC {rows[variant]['auc']:.2f} vs {p['auc']:.2f} with the default variant "
                           f"({rows[variant]['auc'] - p['auc']:+.2f})")
        for ctrl in ("random-default", "density-default"):
            if ctrl in rows:
                out.append(f"  control {ctrl}: AUC {rows[ctrl]['auc']:.2f} ({rows[ctrl]['auc'] - p['auc']:+.2f} vs IR)")
    if drops:
        worst = max(drops, key=drops.get)
        out.append(f"largest training-free drop at the default schedule: {worst} ({drops[worst]:+.2f} AUC)")
    return out


def plot(results: dict[str, dict], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from evtrack.metrics.plots import save_png

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, rep in results.items():
        rows = rep["accuracy"]
        pts = sorted((r["tokens_kept_frac"], r["auc"]) for n, r in rows.items() if n in UNIFORM_SWEEP)
        line, = a1.plot([p[0] for p in pts], [p[1] for p in pts], "-o", label=name)
        if "ir-default" in rows:
            a1.scatter(rows["ir-default"]["tokens_kept_frac"], rows["ir-default"]["auc"], marker="*", s=120,
                       color=line.get_color(), zorder=3)
        d = rows["dense"]["transformer_sops"]
        pts = sorted((r["transformer_sops"] / d, r["auc"]) for n, r in rows.items() if n in UNIFORM_SWEEP or n == "ir-default")
        a2.plot([p[0] for p in pts], [p[1] for p in pts], "-o", color=line.get_color(), label=name)
        for ctrl, m in (("random-default", "x"), ("density-default", "^")):
            if ctrl in rows:
                a2.scatter(rows[ctrl]["transformer_sops"] / d, rows[ctrl]["auc"], marker=m, color=line.get_color())
    a1.set_xlabel("tokens processed / dense (uniform keep 0.35-1.0; star: default schedule)")
    a1.set_ylabel("AUC (%), generated test split")
    a2.set_xlabel("transformer SOPs / dense (x: random, ^: density selection, default schedule)")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle("Training-free token pruning across spiking backbones", fontsize=10)
    fig.tight_layout()
    save_png(fig, png)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", action="append", default=None, metavar="NAME=PATH",
                   help="a backbone to compare (repeat; default: every checkpoint shipped in evtrack/data)")
    p.add_argument("--data", nargs="+", default=["data/synth"], help="generated dataset root(s) with --split")
    p.add_argument("--split", default="test")
    p.add_argument("--real", nargs="*", default=[], help="real val root(s) (convert-dataset output), optional")
    p.add_argument("--real-split", default="val")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out-dir", default="out/backbones")
    p.add_argument("--max-sequences", type=int, default=None, help="first N sequences of each root (quick look)")
    p.add_argument("--reuse", action="store_true", help="keep the per-checkpoint results already in --out-dir")
    args = p.parse_args(argv)
    if args.checkpoint:
        ckpts = {}
        for item in args.checkpoint:
            name, sep, path = item.partition("=")
            if not sep or not name or not path:
                p.error(f"--checkpoint {item!r}: expected NAME=PATH")
            ckpts[name] = path
    else:
        from evtrack.shipped import shipped_checkpoints

        ckpts = {name: str(path) for name, path in shipped_checkpoints().items()}
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    from evtrack.network.checkpoint import load_checkpoint

    results, real = {}, {}
    for name, path in ckpts.items():
        results[name] = run_pruning(path, args.data, args.split, TEST_CONFIGS, out / f"{name}_{args.split}",
                                    args.threads, True, args.reuse, args.max_sequences)
        results[name]["config_name"] = load_checkpoint(path)["config"].name
        if args.real:
            real[name] = run_pruning(path, args.real, args.real_split, REAL_CONFIGS, out / f"{name}_{args.real_split}",
                                     args.threads, False, args.reuse, args.max_sequences)
    lines = [f"### Training-free pruning across backbones: {results[next(iter(results))]['sequences']} generated "
             f"{args.split} sequences" + (f", {next(iter(real.values()))['sequences']} real {args.real_split} sequences"
                                          if real else ""), "",
             "network ms: median backbone forward (search crop, cached template), dense and default interleaved, "
             f"{args.threads} thread(s); SOPs/energy per tracked frame", ""]
    lines += table(results, real)
    lines += ["", "#### Answers from the rows above", ""] + [f"- {a}" for a in answers(results)]
    text = "\n".join(lines)
    print(text)
    from evtrack.io import atomic

    atomic.write_text(out / "backbones_pruning.md", text + "\n")
    png = out / "backbones_pruning.png"
    try:
        plot(results, png)
        print(f"\nplot: {png}")
    except Exception as exc:  # plotting must not lose the measurements
        print(f"plot failed: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
