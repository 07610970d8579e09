#!/usr/bin/env python3
"""bench/compare.py against two fake engines whose figures are known: the
tables it prints, the records it writes, and its errors."""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import textwrap
import unittest

COMPARE = pathlib.Path(__file__).resolve().parents[2] / "bench" / "compare.py"

# A fake `aviary`: `bench --membw --json` prints the next bandwidth of a
# cycle (FAKE_MEMBW, default 60, 80, 60, ...: before and after each peer run),
# kept in a counter file; `bench -m M ... --json` prints a pp record and a tg record (100 t/s,
# 0.4 GB a token; with --membw rated against 40 GB/s).
FAKE_AVIARY = textwrap.dedent("""\
    #!/usr/bin/env python3
    import json, os, sys
    args = sys.argv[1:]
    if "-m" not in args:
        counter = os.environ["FAKE_COUNTER"]
        n = int(open(counter).read()) if os.path.exists(counter) else 0
        open(counter, "w").write(str(n + 1))
        cycle = [float(v) for v in os.environ.get("FAKE_MEMBW", "60,80").split(",")]
        print(json.dumps({"aviary_membw_gbs": cycle[n % len(cycle)]}))
        sys.exit(0)
    if os.environ.get("FAKE_FAIL"):
        sys.exit("fake aviary: cannot open the model")
    p, n = int(args[args.index("-p") + 1]), int(args[args.index("-n") + 1])
    if p:
        print(json.dumps({"n_prompt": p, "n_gen": 0, "avg_ts": 1000.0, "samples_ts": [990.0, 1010.0]}))
    if n:
        rated = "--membw" in args
        print(json.dumps({"n_prompt": 0, "n_gen": n, "avg_ts": 100.0, "samples_ts": [100.0, 100.0],
                          "aviary_weight_bytes_per_token": 400000000,
                          "aviary_membw_gbs": 40.0 if rated else None,
                          "aviary_membw_fraction": 1.0 if rated else None}))
    """)

# A fake peer: half of Aviary's pp speed, and in tg the next speed of a cycle
# (FAKE_PEER_TS, default 50: half of Aviary's), in llama-bench's jsonl.
FAKE_PEER = textwrap.dedent("""\
    #!/usr/bin/env python3
    import json, os, sys
    model, p, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    counter = os.environ["FAKE_COUNTER"] + ".peer"
    k = int(open(counter).read()) if os.path.exists(counter) else 0
    open(counter, "w").write(str(k + 1))
    cycle = [float(v) for v in os.environ.get("FAKE_PEER_TS", "50").split(",")]
    ts = cycle[k % len(cycle)]
    if p:
        print(json.dumps({"n_prompt": p, "n_gen": 0, "avg_ts": 500.0, "samples_ts": [500.0]}))
    if n:
        print(json.dumps({"n_prompt": 0, "n_gen": n, "avg_ts": ts, "samples_ts": [ts]}))
    """)


class CompareTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        d = pathlib.Path(self.dir.name)
        self.aviary, self.peer = d / "aviary", d / "peer"
        self.aviary.write_text(FAKE_AVIARY)
        self.peer.write_text(FAKE_PEER)
        for f in (self.aviary, self.peer):
            f.chmod(0o755)
        self.model = d / "m.gguf"
        self.model.write_text("")
        self.env = {**os.environ, "FAKE_COUNTER": str(d / "counter")}
        self.json_out = d / "records.jsonl"

    def tearDown(self):
        self.dir.cleanup()

    def compare(self, *extra, env=None):
        cmd = [sys.executable, str(COMPARE), "--aviary", str(self.aviary),
               "--peer", f"fake={self.peer} {{model}} {{p}} {{n}} {{t}} {{r}}",
               "--model", f"tiny={self.model}", "-p", "64", "-n", "16", "-r", "2", "--rounds", "2",
               "--json-out", str(self.json_out), *extra]
        return subprocess.run(cmd, capture_output=True, text=True, env=env or self.env)

    def table_rows(self, out):
        return [line.split() for line in out.splitlines() if line.strip().startswith("tiny")]

    def test_ratios_without_bandwidth(self):
        run = self.compare()
        self.assertEqual(run.returncode, 0, run.stderr)
        rows = self.table_rows(run.stdout)
        self.assertEqual(rows, [["tiny", "pp64", "1000.0", "500.0", "2.00x", "-", "-"],
                                ["tiny", "tg16", "100.0", "50.0", "2.00x", "40.0", "-"]])
        self.assertNotIn("per round", run.stdout)
        self.assertFalse(os.path.exists(self.env["FAKE_COUNTER"]), "no bandwidth runs without --membw")

    def test_bandwidth_around_every_peer_run(self):
        run = self.compare("--membw")
        self.assertEqual(run.returncode, 0, run.stderr)
        rows = self.table_rows(run.stdout)
        # The summary: 100 t/s x 0.4 GB = 40 GB/s, 100% of the bandwidth aviary measured.
        self.assertEqual(rows[1], ["tiny", "tg16", "100.0", "50.0", "2.00x", "40.0", "100%"])
        # Per round: the peer met (60 + 80) / 2 = 70 GB/s, aviary 40; at equal
        # bandwidth Aviary is 2 x 70 / 40 = 3.5 times as fast.
        self.assertIn("per round", run.stdout)
        self.assertEqual(rows[2:4], [["tiny", "tg16", "1", "100.0", "40.0", "50.0", "70.0", "2.00x", "3.50x"],
                                     ["tiny", "tg16", "2", "100.0", "40.0", "50.0", "70.0", "2.00x", "3.50x"]])
        # 40 against 70 GB/s: no round met the same machine.
        self.assertEqual(rows[4], ["tiny", "tg16", "0/2", "-"])
        self.assertEqual(int(open(self.env["FAKE_COUNTER"]).read()), 4, "before and after each of two peer runs")
        records = [json.loads(line) for line in self.json_out.read_text().splitlines()]
        peer_tg = [r for r in records if r["engine"] == "fake" and r["n_gen"] > 0]
        self.assertEqual([r["compare_membw_gbs"] for r in peer_tg], [70.0, 70.0])
        self.assertEqual([r["round"] for r in peer_tg], [1, 2])

    def test_ratio_over_rounds_that_met_the_same_bandwidth(self):
        # Peer rounds: 50 t/s at (38 + 42) / 2 = 40 GB/s, as aviary's; 25 t/s at
        # (38 + 80) / 2 = 59; 40 t/s at 40 again. Matched: rounds 1 and 3, ratios 2.0 and 2.5.
        env = {**self.env, "FAKE_MEMBW": "38,42,38,80", "FAKE_PEER_TS": "50,25,40"}
        run = self.compare("--membw", "--rounds", "3", env=env)
        self.assertEqual(run.returncode, 0, run.stderr)
        rows = self.table_rows(run.stdout)
        self.assertEqual([(r[5], r[6], r[7]) for r in rows[2:5]],
                         [("50.0", "40.0", "2.00x"), ("25.0", "59.0", "4.00x"), ("40.0", "40.0", "2.50x")])
        self.assertEqual(rows[5], ["tiny", "tg16", "2/3", "2.25x"])

    def records(self):
        return [json.loads(line) for line in self.json_out.read_text().splitlines()]

    def readings(self):
        return int(open(self.env["FAKE_COUNTER"]).read())

    def test_quiet_waits_for_bandwidth_before_every_run(self):
        # Readings 30, 30, 70, 30, 30, 70: each run starts after two short readings.
        env = {**self.env, "FAKE_MEMBW": "30,30,70"}
        run = self.compare("--quiet", "50", "--quiet-poll", "0", "--rounds", "1", env=env)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("every run waited for a bandwidth of 50 GB/s or more\n", run.stdout)
        self.assertEqual(self.readings(), 6)
        waits = {(r["engine"], r["compare_quiet_gbs"], r["compare_quiet_short_readings"], r["compare_quiet_met"])
                 for r in self.records()}
        self.assertEqual(waits, {("aviary", 70.0, 2, True), ("fake", 70.0, 2, True)})
        self.assertEqual(self.table_rows(run.stdout)[1], ["tiny", "tg16", "100.0", "50.0", "2.00x", "40.0", "-"])

    def test_quiet_reading_is_the_peer_run_bandwidth_before(self):
        # The reading that starts the peer's run is its "before" (70); the one
        # after it is 30: the peer met 50 GB/s, with 7 readings in all.
        env = {**self.env, "FAKE_MEMBW": "30,30,70"}
        run = self.compare("--quiet", "50", "--quiet-poll", "0", "--rounds", "1", "--membw", env=env)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(self.readings(), 7)
        peer_tg = [r for r in self.records() if r["engine"] == "fake" and r["n_gen"] > 0]
        self.assertEqual([r["compare_membw_gbs"] for r in peer_tg], [50.0])

    def test_quiet_gives_up_after_waiting_and_says_so(self):
        env = {**self.env, "FAKE_MEMBW": "30"}
        run = self.compare("--quiet", "50", "--quiet-wait", "0", "--quiet-poll", "0", env=env)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("bandwidth still 30.0 GB/s (< 50) after 0 s; running anyway", run.stderr)
        self.assertIn("; 4 runs started without it, after waiting 0 s", run.stdout)
        self.assertEqual(self.readings(), 4, "one reading before each of 2 x 2 runs")
        self.assertTrue(all(r["compare_quiet_met"] is False for r in self.records()))

    def test_quiet_must_be_positive(self):
        run = self.compare("--quiet", "0")
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("--quiet 0: the bandwidth to wait for must be positive GB/s", run.stderr)

    def test_failing_engine_is_named(self):
        run = self.compare(env={**self.env, "FAKE_FAIL": "1"})
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("cannot open the model", run.stderr)
        self.assertIn("failed with status", run.stderr)

    def test_model_without_label_is_refused(self):
        run = subprocess.run([sys.executable, str(COMPARE), "--aviary", str(self.aviary), "--model", "m.gguf"],
                             capture_output=True, text=True)
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("--model 'm.gguf' must be LABEL=VALUE", run.stderr)


if __name__ == "__main__":
    unittest.main()
