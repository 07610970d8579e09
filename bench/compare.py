#!/usr/bin/env python3
"""Runs Aviary and peer engines on the same model files, alternating, and prints
the tokens/s of each and Aviary's ratio to each peer, per model and test.

Every engine is a command that prints llama-bench's `-o jsonl` records (one
JSON object per test, with n_prompt, n_gen, n_threads, avg_ts, samples_ts):
`aviary bench --json` and llama.cpp's `llama-bench -o jsonl` both do. The
engines take turns (round 1: aviary, peer, ...; round 2: the same again) so
that slow drifts of a noisy machine hit all of them alike, and the reported
figure is the median over every sample of every round.

Example (peers are built from their public sources, outside this repository):

  bench/compare.py --aviary build/release/aviary \\
      --llama-bench ../peers/llama.cpp/build/bin/llama-bench \\
      --model 0.1B-q8_0=/tmp/m/0.1B-q8_0.gguf --model 0.1B-f16=/tmp/m/0.1B-f16.gguf \\
      -p 512 -n 128 -t 2 -r 3 --rounds 2

Other peers: --peer NAME='COMMAND' where COMMAND may use {model} {p} {n} {t} {r}
and prints the same jsonl fields. --markdown prints the table as Markdown.

With --membw, every aviary run rates its tg against the memory bandwidth it
measures around each repetition, and the script measures the bandwidth (with
`aviary bench --membw`) just before and just after every peer run too. A
second table then gives each round of each tg test: the tokens/s of every
engine, the bandwidth the machine gave during it, Aviary's ratio, and the
ratio at equal bandwidth (each engine's tokens/s per GB/s). On a machine whose
bandwidth swings from one second to the next (a shared host), that tells a
round where the engines met the same machine from one where they did not; a
third table gives Aviary's median ratio over the rounds where both engines
met the same bandwidth (within 15%).

With --quiet GBS, every engine run (Aviary's and each peer's) starts only once
the machine's bandwidth measures at least GBS GB/s: a benchmark on a quiet
machine, the same for every engine. It helps on a shared host whose
bandwidth is throttled now and then (the machine these benchmarks were
written on reads 64-68 GB/s with 2 threads when quiet, a hard 35-38 when
throttled), as far as its quiet spells outlast a run: it checks the start of
a run only, so keep runs short (tg alone, -r 1) and read the per-round
bandwidths (--membw) for what each run met. A run that has waited
--quiet-wait seconds starts anyway and is reported as such; the records say
how many readings each run waited.
Standard library only.
"""

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--aviary", required=True, help="path of the aviary executable")
    ap.add_argument("--llama-bench", help="path of llama.cpp's llama-bench")
    ap.add_argument("--peer", action="append", default=[], metavar="NAME=COMMAND",
                    help="another engine: a command template printing llama-bench jsonl")
    ap.add_argument("--model", action="append", required=True, metavar="LABEL=PATH",
                    help="a model file every engine runs (repeatable)")
    ap.add_argument("-p", type=int, default=512, help="prompt tokens (pp test; 0 = skip)")
    ap.add_argument("-n", type=int, default=128, help="generated tokens (tg test; 0 = skip)")
    ap.add_argument("-t", type=int, default=2, help="threads for every engine")
    ap.add_argument("-r", type=int, default=3, help="repetitions per engine run")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds per model")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--json-out", help="also write every record to this jsonl file")
    ap.add_argument("--membw", action="store_true",
                    help="rate Aviary's tg against the memory bandwidth, measured by each aviary run around "
                         "every tg repetition (aviary bench --membw), measure it around every peer run too, "
                         "and print every tg round")
    ap.add_argument("--quiet", type=float, metavar="GBS",
                    help="start every engine run only once the memory bandwidth measures at least GBS GB/s")
    ap.add_argument("--quiet-wait", type=float, default=600, metavar="S",
                    help="with --quiet: start a run anyway after waiting this many seconds (default 600)")
    ap.add_argument("--quiet-poll", type=float, default=5, metavar="S",
                    help="with --quiet: seconds between bandwidth readings (default 5)")
    args = ap.parse_args(argv)
    if args.quiet is not None and args.quiet <= 0:
        ap.error(f"--quiet {args.quiet:g}: the bandwidth to wait for must be positive GB/s")
    return args


def split_label(spec, what):
    if "=" not in spec:
        sys.exit(f"compare.py: {what} '{spec}' must be LABEL=VALUE")
    label, value = spec.split("=", 1)
    return label, value


def engine_commands(args):
    """(name, template) pairs; templates use {model} {p} {n} {t} {r}."""
    membw = " --membw" if args.membw else ""
    engines = [("aviary", f"{shlex.quote(args.aviary)} bench -m {{model}} -p {{p}} -n {{n}} -t {{t}} -r {{r}} --json"
                          + membw)]
    if args.llama_bench:
        engines.append(("llama.cpp", f"{shlex.quote(args.llama_bench)} -m {{model}} -p {{p}} -n {{n}} -t {{t}} "
                                     f"-r {{r}} -o jsonl"))
    for spec in args.peer:
        engines.append(split_label(spec, "--peer"))
    return engines


def run_jsonl(cmd):
    """The JSON records (one per line) a shell command prints; RuntimeError if it
    fails or prints none."""
    proc = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"`{cmd}` failed with status {proc.returncode}:\n{proc.stderr[-2000:]}")
    records = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            records.append(json.loads(line))
    if not records:
        raise RuntimeError(f"`{cmd}` printed no jsonl records:\n{proc.stdout[-2000:]}")
    return records


def run_engine(template, model, args):
    return run_jsonl(template.format(model=shlex.quote(model), p=args.p, n=args.n, t=args.t, r=args.r))


def measure_bandwidth(args):
    """The machine's memory bandwidth now, GB/s (aviary bench --membw)."""
    cmd = f"{shlex.quote(args.aviary)} bench --membw --json -t {args.t}"
    for rec in run_jsonl(cmd):
        if rec.get("aviary_membw_gbs"):
            return float(rec["aviary_membw_gbs"])
    raise RuntimeError(f"`{cmd}` printed no aviary_membw_gbs")


def wait_for_quiet(args):
    """Reads the bandwidth until it is at least args.quiet GB/s, or until
    args.quiet_wait seconds have passed. Returns the record fields of the wait:
    the last reading, how many readings fell short, and whether the machine was
    quiet when the run started."""
    start, short = time.monotonic(), 0
    while (gbs := measure_bandwidth(args)) < args.quiet:
        short += 1
        if time.monotonic() - start + args.quiet_poll > args.quiet_wait:
            print(f"compare: bandwidth still {gbs:.1f} GB/s (< {args.quiet:g}) after {args.quiet_wait:g} s; "
                  "running anyway", file=sys.stderr, flush=True)
            break
        time.sleep(args.quiet_poll)
    return {"compare_quiet_gbs": gbs, "compare_quiet_short_readings": short, "compare_quiet_met": gbs >= args.quiet}


def run_peer_between_measurements(template, model, args, before=None):
    """A peer's records, each with compare_membw_gbs: the mean of the bandwidths
    measured just before (or `before`, a reading just taken) and just after the run."""
    if before is None:
        before = measure_bandwidth(args)
    records = run_engine(template, model, args)
    seen = (before + measure_bandwidth(args)) / 2
    return [{**rec, "compare_membw_gbs": seen} for rec in records]


def bandwidth_seen(name, rec):
    """The bandwidth an engine's run met: aviary's own measurement around its
    tg repetitions, or the script's around a peer's run; None if not measured."""
    gbs = rec.get("aviary_membw_gbs") if name == "aviary" else rec.get("compare_membw_gbs")
    return float(gbs) if gbs else None


def peer_names(engines):
    return [name for name, _ in engines if name != "aviary"]


def test_name(rec):
    if rec.get("n_prompt", 0) > 0 and rec.get("n_gen", 0) == 0:
        return f"pp{rec['n_prompt']}"
    if rec.get("n_gen", 0) > 0 and rec.get("n_prompt", 0) == 0:
        return f"tg{rec['n_gen']}"
    return f"pp{rec.get('n_prompt', 0)}+tg{rec.get('n_gen', 0)}"


def collect(args):
    engines = engine_commands(args)
    samples = {}  # (model, test, engine) -> [tokens/s]
    extras = {}   # (model, test) -> [aviary's record of each round]
    all_records = []
    for spec in args.model:
        label, path = split_label(spec, "--model")
        for rnd in range(args.rounds):
            for name, template in engines:
                print(f"compare: {label} round {rnd + 1}/{args.rounds}: {name}", file=sys.stderr, flush=True)
                quiet = wait_for_quiet(args) if args.quiet is not None else {}
                if args.membw and name != "aviary":
                    records = run_peer_between_measurements(template, path, args, quiet.get("compare_quiet_gbs"))
                else:
                    records = run_engine(template, path, args)
                for rec in records:
                    rec.update(quiet)
                    key = (label, test_name(rec), name)
                    samples.setdefault(key, []).extend(rec.get("samples_ts") or [rec["avg_ts"]])
                    if name == "aviary":
                        extras.setdefault((label, test_name(rec)), []).append(rec)
                    all_records.append({"engine": name, "model_label": label, "round": rnd + 1, **rec})
    return engines, samples, extras, all_records


def print_table(args, engines, samples, extras):
    peers = peer_names(engines)
    header = ["model", "test", "aviary t/s"] + [f"{p} t/s" for p in peers] + [f"ratio vs {p}" for p in peers]
    header += ["GB/s", "of membw"]
    rows = []
    for label, test in sorted({(m, t) for (m, t, _) in samples}, key=lambda k: (k[0], k[1])):
        med = {name: statistics.median(samples[(label, test, name)])
               for name, _ in engines if (label, test, name) in samples}
        av = med.get("aviary")
        row = [label, test, f"{av:.1f}" if av else "-"]
        row += [f"{med[p]:.1f}" if p in med else "-" for p in peers]
        row += [f"{av / med[p]:.2f}x" if av and med.get(p) else "-" for p in peers]
        # GB/s: the median tokens/s times the weight bytes of a token; of
        # membw: the median over rounds of each round's fraction, each against
        # the bandwidth measured around that round's own tg test.
        recs = extras.get((label, test), [])
        # (the bytes a tg token read vary a little from round to round when
        # the sparse feed-forward skips columns: their median)
        per_tokens = [r["aviary_weight_bytes_per_token"] for r in recs if r.get("aviary_weight_bytes_per_token")]
        per_token = statistics.median(per_tokens) if per_tokens else None
        fracs = [r["aviary_membw_fraction"] for r in recs if r.get("aviary_membw_fraction") is not None]
        gen = test.startswith("tg")
        row += [f"{av * per_token / 1e9:.1f}" if gen and av and per_token else "-",
                f"{100 * statistics.median(fracs):.0f}%" if gen and fracs else "-"]
        rows.append(row)
    print_rows(args, header, rows)


# Two runs met the same machine when the bandwidths measured around them are
# within this fraction of each other.
SAME_BANDWIDTH = 0.15


def tg_rounds(records):
    """(model, test, round) -> {engine: (median t/s, GB/s met or None)} of the tg tests."""
    runs = {}
    for rec in records:
        test = test_name(rec)
        if not test.startswith("tg"):
            continue
        ts = statistics.median(rec.get("samples_ts") or [rec["avg_ts"]])
        runs.setdefault((rec["model_label"], test, rec["round"]), {})[rec["engine"]] = (
            ts, bandwidth_seen(rec["engine"], rec))
    return runs


def same_bandwidth(a, b):
    return a is not None and b is not None and abs(a - b) <= SAME_BANDWIDTH * max(a, b)


def matched_rows(engines, runs):
    """Per tg test and peer (runs: tg_rounds()): how many rounds the two engines
    met the same bandwidth (SAME_BANDWIDTH), and Aviary's median ratio over them."""
    peers = peer_names(engines)
    ratios = {}  # (model, test, peer) -> [ratio of each matched round]
    totals = {}  # (model, test, peer) -> rounds with both engines
    for (label, test, _), got in runs.items():
        av_ts, av_bw = got.get("aviary", (None, None))
        for p in peers:
            p_ts, p_bw = got.get(p, (None, None))
            if not av_ts or not p_ts:
                continue
            totals[(label, test, p)] = totals.get((label, test, p), 0) + 1
            if same_bandwidth(av_bw, p_bw):
                ratios.setdefault((label, test, p), []).append(av_ts / p_ts)
    header = ["model", "test"]
    for p in peers:
        header += [f"rounds matched vs {p}", f"ratio vs {p}, matched"]
    rows = []
    for label, test in sorted({(m, t) for (m, t, _) in totals}):
        row = [label, test]
        for p in peers:
            got = ratios.get((label, test, p), [])
            row += [f"{len(got)}/{totals.get((label, test, p), 0)}",
                    f"{statistics.median(got):.2f}x" if got else "-"]
        rows.append(row)
    return header, rows


def round_rows(engines, runs):
    """One row per round of every tg test (runs: tg_rounds()): each engine's
    median tokens/s and the bandwidth it met, Aviary's ratio to each peer, and
    the ratio at equal bandwidth, (aviary t/s / its GB/s) / (peer t/s / its GB/s)."""
    peers = peer_names(engines)
    header = ["model", "test", "round", "aviary t/s", "aviary GB/s"]
    for p in peers:
        header += [f"{p} t/s", f"{p} GB/s", f"ratio vs {p}", f"at equal GB/s vs {p}"]
    rows = []
    for (label, test, rnd), got in sorted(runs.items()):
        av_ts, av_bw = got.get("aviary", (None, None))
        row = [label, test, str(rnd), f"{av_ts:.1f}" if av_ts else "-", f"{av_bw:.1f}" if av_bw else "-"]
        for p in peers:
            p_ts, p_bw = got.get(p, (None, None))
            ratio = av_ts / p_ts if av_ts and p_ts else None
            equal = ratio * p_bw / av_bw if ratio and av_bw and p_bw else None
            row += [f"{p_ts:.1f}" if p_ts else "-", f"{p_bw:.1f}" if p_bw else "-",
                    f"{ratio:.2f}x" if ratio else "-", f"{equal:.2f}x" if equal else "-"]
        rows.append(row)
    return header, rows


def print_rows(args, header, rows):
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    for r in [header] + rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))


def main(argv):
    args = parse_args(argv)
    try:
        engines, samples, extras, records = collect(args)
    except RuntimeError as e:
        sys.exit(f"compare.py: {e}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            for rec in records:
                f.write(json.dumps(rec) + "\n")
    print(f"threads {args.t}, {args.rounds} alternating rounds x {args.r} repetitions; median tokens/s"
          + ("; of membw: median over rounds, each against the bandwidth aviary measured around its tg"
             if args.membw else ""))
    if args.quiet is not None:
        late = len({(r["engine"], r["model_label"], r["round"]) for r in records if r.get("compare_quiet_met") is False})
        print(f"every run waited for a bandwidth of {args.quiet:g} GB/s or more"
              + (f"; {late} runs started without it, after waiting {args.quiet_wait:g} s" if late else ""))
    print_table(args, engines, samples, extras)
    if args.membw:
        runs = tg_rounds(records)
        header, rows = round_rows(engines, runs)
        if rows:
            print()
            print("per round (tg): GB/s, the memory bandwidth measured around each engine's run")
            print_rows(args, header, rows)
            print()
            print(f"tg over the rounds where both engines met the same bandwidth "
                  f"(within {100 * SAME_BANDWIDTH:.0f}%): median ratio")
            print_rows(args, *matched_rows(engines, runs))


if __name__ == "__main__":
    main(sys.argv[1:])
