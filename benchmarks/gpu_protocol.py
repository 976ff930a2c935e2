"""The paper's protocol on one GPU, in one time-boxed command: device tests, the CUDA benchmark, the four figures.

    benchmarks/gpu.sh 540                                   # on the GPU machine (what `run` calls); see docs/performance.md
    python benchmarks/gpu_protocol.py --budget-s 540 --out $OUT
    python benchmarks/gpu_protocol.py --device cpu --tiny   # dry run on a CPU, seconds (tests/test_gpu_script.py)

Steps, in order, each inside the budget (seconds from this script's start; default 540, the most a
10-minute command should plan for):

1. ``tests/test_device.py`` under pytest (graphed vs eager, CUDA vs CPU, the GPU search against the
   k-d tree). Without pytest (the bare GPU machine has none), it says so and skips the step, unless
   pytest is importable from a carried folder (``benchmarks/gpu.sh --vendor`` copies it to build/gpu-vendor).
2. ``benchmarks/packing_bench.py --device cuda``: packing 40 members against 10, graphed against eager;
   then one small configuration (Figure 4's smoke size, 6 repeats) on the CPU and on the device, its
   memorized shares per group and epoch compared within Welch's 95% intervals (``compare`` in the report).
3. The four figure configurations at the paper's protocol (memnb.workflows.profiles.FIGURES, profile
   "paper", on --device). Before each figure a calibration run (the same configuration, 2 epochs)
   measures seconds per training epoch and per evaluated epoch; the full run starts only when its
   estimate (set-up + epochs x train + evaluations x evaluation, x SAFETY) fits the time left, else
   the figure's time is reported as "extrapolated" from the calibration. With --continue-runs such a
   figure starts anyway and is stopped at an evaluated epoch when the time is up (status "partial");
   a later call resumes it, to the numbers of an uninterrupted run. Runs go to --runs (kept between
   calls: a later call resumes or just loads them). --neighbors torch searches on the GPU (exact,
   float64; the paper's 2-D figures otherwise use the k-d tree on the CPU; another run name).

Writes under --out (the `run` tool brings back at most 8 files of 16 MiB each): ``gpu-timings.json``
(card, driver, torch, CUDA, per figure: status "complete" or "extrapolated", wall seconds, the
train / generate / search shares from the runs' manifests), ``gpu-tests.log``, ``gpu-bench.json`` and
ONE archive ``gpu-runs.tar.gz`` of tables-only copies of every figure run (table.parquet, zu.parquet,
loss.parquet, manifest.json and config.json: memnb.experiment.archive), split into ``.partNN`` pieces of at
most PART_BYTES if larger; ``python -m memnb.experiment.archive unpack gpu-runs.tar.gz`` puts them under
outputs/runs here, where ``make figures PROFILE=paper`` renders them.
``--tiny`` shrinks every configuration to seconds (the dry run); it needs no GPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's memnb, installed or not

PART_BYTES = 15 * 2**20  # below the 16 MiB that comes back per file
SAFETY = 1.25  # a full run starts only if SAFETY x its estimate fits the time left
RESERVE_S = 20.0  # kept at the end for the archive and the report
CALIBRATION_EPOCHS = 2
TESTS_TIMEOUT_S = 180
BENCH_TIMEOUT_S = 120
NO_PYTEST_ENV = "MEMNB_GPU_NO_PYTEST"  # "1": behave as on a machine without pytest (tested)


class Clock:
    """Seconds left of the budget, counted from construction."""

    def __init__(self, budget_s: float):
        self.t0, self.budget_s = time.perf_counter(), float(budget_s)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self) -> float:
        return self.budget_s - self.elapsed()


def machine(device: str) -> dict:
    """Card, driver, torch, CUDA and cuDNN versions, Python, CPU count."""
    import torch

    info = {
        "device": device,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpu_count": os.cpu_count(),
        "card": None,
        "driver": None,
        "cudnn": None,
    }
    if device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            card=props.name, memory_gib=round(props.total_memory / 2**30, 1), cudnn=torch.backends.cudnn.version()
        )
        smi = shutil.which("nvidia-smi")
        if smi:
            try:
                q = [smi, "--query-gpu=driver_version", "--format=csv,noheader"]
                info["driver"] = subprocess.run(q, capture_output=True, text=True, timeout=20).stdout.strip() or None
            except (OSError, subprocess.SubprocessError):
                pass
    return info


def have_pytest() -> bool:
    return os.environ.get(NO_PYTEST_ENV) != "1" and importlib.util.find_spec("pytest") is not None


def run_tests(out: Path, clock: Clock) -> dict:
    """tests/test_device.py under pytest, its log to out/gpu-tests.log; a record of what happened."""
    log = out / "gpu-tests.log"
    if not have_pytest():
        msg = "pytest is not installed here: tests/test_device.py skipped (benchmarks/gpu.sh --vendor, then carry it)"
        log.write_text(msg + "\n")
        print(msg, flush=True)
        return {"status": "skipped", "reason": "pytest not installed"}
    timeout = max(10.0, min(TESTS_TIMEOUT_S, clock.left() - RESERVE_S))
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "tests/test_device.py", "-p", "no:cacheprovider"]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=_env())
        log.write_text(p.stdout + p.stderr)
        status = "passed" if p.returncode == 0 else f"failed (exit {p.returncode})"
        tail = (p.stdout.strip().splitlines() or [""])[-1]
    except subprocess.TimeoutExpired as e:
        log.write_text(f"timed out after {timeout:.0f} s\n{_text(e.stdout)}{_text(e.stderr)}")
        status, tail = "timed out", ""
    print(f"tests/test_device.py: {status} {tail}", flush=True)
    return {"status": status, "summary": tail, "wall_s": round(time.perf_counter() - t0, 2)}


def _text(b) -> str:
    return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def run_bench(out: Path, device: str, tiny: bool, clock: Clock) -> dict:
    """benchmarks/packing_bench.py on `device`; its report copied to out/gpu-bench.json."""
    tmp = out / ".bench"
    cmd = [sys.executable, "benchmarks/packing_bench.py", "--device", device, "--out", str(tmp)]
    cmd += ["--quick"] if tiny else ["--reps", "2"]
    timeout = max(10.0, min(BENCH_TIMEOUT_S, clock.left() - RESERVE_S))
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=_env())
    except subprocess.TimeoutExpired:
        shutil.rmtree(tmp, ignore_errors=True)
        return {"status": "timed out", "wall_s": round(time.perf_counter() - t0, 2)}
    report = tmp / ("packing-latest-quick.json" if tiny else "packing-latest.json")
    rec = {"status": "ok" if p.returncode == 0 else f"failed (exit {p.returncode})"}
    if report.exists():
        shutil.copy(report, out / "gpu-bench.json")
        rec["summary"] = json.loads(report.read_text())["summary"]
    else:
        rec["error"] = (p.stdout + p.stderr)[-2000:]
    shutil.rmtree(tmp, ignore_errors=True)
    rec["wall_s"] = round(time.perf_counter() - t0, 2)
    print(f"packing benchmark: {rec['status']} {rec.get('summary', '')}", flush=True)
    return rec


def figure_configs(device: str, tiny: bool) -> dict:
    """{figure: config} at the paper's protocol on `device` (tiny: the smoke profile, shrunk further)."""
    from memnb.workflows.profiles import FIGURES, apply_profile

    out = {}
    for n, paper in FIGURES.items():
        c, _ = apply_profile(paper, "smoke" if tiny else "paper")
        if tiny:  # four distinct configurations still: points, injections and epochs scaled from the paper's
            injected = max(4, paper.n_outliers // 40)
            c = c.replace(
                n_base=paper.n_base // 100, n_outliers=injected, n_duplicates=injected, epochs=2 if n == 4 else 3
            )
        # on CUDA the config keeps device "auto" (CUDA there): the runs are then named as those of
        # `make figures PROFILE=paper`, and the archive unpacked here is what the figure notebooks find
        out[n] = c if device == "cuda" else c.replace(device=device)
    return out


def _manifest_times(results) -> dict:
    m = results.manifest
    parts = {k: float(m.get(k, 0.0)) for k in ("train_s", "generate_s", "metric_s")}
    total = sum(parts.values()) or 1.0
    return {
        **{k: round(v, 3) for k, v in parts.items()},
        "shares": {k.removesuffix("_s"): round(v / total, 4) for k, v in parts.items()},
        "wall_s_this_session": round(float(m.get("wall_s_this_session", 0.0)), 3),
        "resumed_from_epoch": m.get("resumed_from_epoch"),
    }


def calibrate(config, root: Path) -> dict:
    """Seconds per training epoch and per evaluated epoch, and the set-up, of `config` run for 2 epochs."""
    from memnb.experiment.results import Results
    from memnb.experiment.runner import run_dir, run_experiment

    short = config.replace(epochs=CALIBRATION_EPOCHS, eval_every=1)
    path = run_dir(short, root)
    earlier = (path / "manifest.json").exists() and Results(path, verify=False).complete
    t0 = time.perf_counter()
    res = run_experiment(short, root, progress=False)
    wall = time.perf_counter() - t0
    m = res.manifest
    if earlier:  # loaded from an earlier call: that session's own times
        wall = float(m.get("wall_s_this_session", wall))
    train = float(m["train_s"]) / CALIBRATION_EPOCHS
    evaluate = (float(m["generate_s"]) + float(m["metric_s"])) / (CALIBRATION_EPOCHS + 1)
    setup = max(0.0, wall - float(m["train_s"]) - float(m["generate_s"]) - float(m["metric_s"]))
    return {"train_epoch_s": train, "eval_epoch_s": evaluate, "setup_s": setup, "wall_s": round(wall, 3)}


def estimate(config, cal: dict) -> float:
    """Seconds of a full run: set-up + epochs x training epoch + evaluations x evaluated epoch."""
    return cal["setup_s"] + config.epochs * cal["train_epoch_s"] + len(config.eval_epochs) * cal["eval_epoch_s"]


class Deadline:
    """A run_experiment callback (memnb.core.callbacks) that stops a run at the first evaluated epoch after `at`
    (a time.perf_counter() value); the stopped run resumes in a later call to the same numbers."""

    def __init__(self, at: float):
        self.at, self.stopped = at, None

    def reset(self) -> None:
        self.stopped = None

    def __call__(self, epoch, arrays, context) -> bool:
        if time.perf_counter() >= self.at:
            self.stopped = epoch
            return True
        return False

    def record(self) -> dict:
        return {"name": "gpu_protocol.Deadline", "stopped_at_epoch": self.stopped}

    def settings(self) -> dict:
        return {"name": "gpu_protocol.Deadline"}


def run_figures(configs: dict, runs: Path, clock: Clock, continue_runs: bool = False) -> tuple[dict, list]:
    """Each figure: calibrate, then run in full when it fits the time left; ({figure: record}, [run dirs]).

    continue_runs: a figure that does not fit is started anyway and stopped (Deadline) when the time is
    up, status "partial"; a later call resumes it (a partial run is not calibrated again).
    """
    from memnb.experiment.results import Results
    from memnb.experiment.runner import run_dir, run_experiment

    records, dirs = {}, []
    for n, config in configs.items():
        rec = {"run": config.run_name(), "epochs": config.epochs, "evaluations": len(config.eval_epochs)}
        path = run_dir(config, runs)
        stored = Results(path, verify=False).manifest if (path / "manifest.json").exists() else {}
        done, partial = bool(stored.get("complete")), stored.get("stopped_at_epoch") is not None
        if not done and clock.left() - RESERVE_S < 5:
            rec.update(status="not started", reason="no time left for a calibration")
            records[n] = rec
            continue
        callbacks = None
        if not done and not (partial and continue_runs):
            cal = calibrate(config, runs / "calibration")
            est = estimate(config, cal)
            rec.update(calibration=cal, estimate_s=round(est, 2))
            if SAFETY * est > clock.left() - RESERVE_S:
                rec.update(status="extrapolated", wall_s=round(est, 2))
                print(f"figure {n}: extrapolated {est:.0f} s (left {clock.left():.0f} s)", flush=True)
                if not continue_runs:
                    records[n] = rec
                    continue
                callbacks = [Deadline(time.perf_counter() + clock.left() - RESERVE_S)]
        elif partial and continue_runs:
            callbacks = [Deadline(time.perf_counter() + clock.left() - RESERVE_S)]
        t0 = time.perf_counter()
        res = run_experiment(config, runs, progress=False, callbacks=callbacks)
        wall = round(time.perf_counter() - t0, 2)
        if res.complete:
            rec.update(status="complete", wall_s=wall, **_manifest_times(res))
        else:  # stopped by the deadline: how far it got; the whole run's time stays the extrapolation
            rec.update(status="partial", trained_epochs=res.manifest["trained_epochs"], **_manifest_times(res))
            rec.setdefault("wall_s", wall)
            rec["session_wall_s"] = wall
        if done:
            rec["note"] = "loaded: complete from an earlier call (times from its manifest)"
            rec["wall_s"] = rec["wall_s_this_session"]
        print(f"figure {n}: {rec['status']}, {rec['wall_s']:.1f} s, shares {rec['shares']}", flush=True)
        records[n] = rec
        dirs.append(path)
    return records, dirs


COMPARE_REPEATS = 6  # repeats of the small configuration run on both devices


def compare_devices(device: str, runs: Path, clock: Clock, tiny: bool) -> dict:
    """One small configuration (Figure 4's smoke size, COMPARE_REPEATS repeats) on the CPU and on `device`: the
    memorized shares per group and epoch compared with Welch's 95% interval (memnb.analysis.curves.compare_curves;
    CUDA's generators draw other numbers than the CPU's, so the curves agree up to chance, not bit for bit)."""
    from memnb.analysis.curves import compare_curves, select
    from memnb.experiment.runner import run_experiment
    from memnb.workflows.profiles import FIGURES, apply_profile

    if clock.left() - RESERVE_S < 30:
        return {"status": "not run (no time left)"}
    base, _ = apply_profile(FIGURES[4], "smoke")
    base = base.replace(n_repeats=COMPARE_REPEATS, epochs=3 if tiny else base.epochs)
    t0 = time.perf_counter()
    tables = {
        d: run_experiment(base.replace(device=d), runs / "compare", progress=False).table() for d in ("cpu", device)
    }
    out = {"config": base.run_name(), "devices": ["cpu", device], "wall_s": round(time.perf_counter() - t0, 2)}
    for crit, k in (("paper", base.ratio), ("train_only", base.train_ratio)):
        for value in ("memorized", "copied"):
            c = compare_curves(select(tables["cpu"], crit, k), select(tables[device], crit, k), value)
            out[f"{crit}/{value}"] = {
                "cells": len(c),
                "within_95": round(float(c.within.mean()), 4),
                "max_abs_diff": round(float(c["diff"].abs().max()), 4),
            }
    return out


def archive(dirs: list, out: Path, runs: Path) -> list[str]:
    """ONE tar.gz of tables-only copies of `dirs` (memnb.experiment.archive.pack: its TABLE_FILES, a manifest saying
    so), split into .partNN pieces above PART_BYTES. Here: python -m memnb.experiment.archive unpack <it>."""
    from memnb.experiment.archive import pack

    return [f.name for f in pack(dirs, out / "gpu-runs.tar.gz", PART_BYTES)]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budget-s", type=float, default=540.0, help="seconds this command may take (default 540)")
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--tiny", action="store_true", help="seconds-long configurations (the CPU dry run)")
    p.add_argument("--out", default=os.environ.get("OUT") or "outputs/gpu", help="report folder (default $OUT)")
    p.add_argument("--runs", default="outputs/gpu-runs", help="run root, kept between calls")
    p.add_argument("--figures", type=int, nargs="*", default=[1, 2, 3, 4])
    p.add_argument("--skip-tests", action="store_true")
    p.add_argument("--skip-bench", action="store_true")
    p.add_argument("--skip-compare", action="store_true", help="skip the CPU-against-device comparison of one run")
    p.add_argument(
        "--continue-runs",
        action="store_true",
        help="start figures that do not fit anyway, stop them when the time is up; a later call resumes them",
    )
    p.add_argument("--neighbors", default=None, help="the figures' search backend (torch: exact, on the GPU)")
    a = p.parse_args(argv)
    import torch

    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here; allowed: a GPU machine, or --device cpu")
    clock = Clock(a.budget_s)
    out, runs = Path(a.out), Path(a.runs)
    out.mkdir(parents=True, exist_ok=True)
    runs.mkdir(parents=True, exist_ok=True)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "budget_s": a.budget_s,
        "tiny": a.tiny,
        "machine": machine(a.device),
    }
    report["tests"] = {"status": "not run (--skip-tests)"} if a.skip_tests else run_tests(out, clock)
    report["bench"] = {"status": "not run (--skip-bench)"} if a.skip_bench else run_bench(out, a.device, a.tiny, clock)
    configs = {n: c for n, c in figure_configs(a.device, a.tiny).items() if n in a.figures}
    if a.neighbors:
        configs = {n: c.replace(neighbors=a.neighbors) for n, c in configs.items()}
    report["compare"] = (
        {"status": "not run (--skip-compare)"} if a.skip_compare else compare_devices(a.device, runs, clock, a.tiny)
    )
    report["figures"], dirs = run_figures(configs, runs, clock, a.continue_runs)
    report["archive"] = archive(dirs, out, runs)
    files = [f for f in out.iterdir() if f.is_file()]
    if len(files) + 1 > 8:  # with gpu-timings.json
        report["warning"] = f"{len(files) + 1} files under {out}: the run tool brings back 8; fetch the rest by parts"
    report["wall_s"] = round(clock.elapsed(), 2)
    (out / "gpu-timings.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {out / 'gpu-timings.json'} and {', '.join(report['archive'])} in {report['wall_s']:.0f} s")
    return report


if __name__ == "__main__":
    main()
