"""docs/benchmarks.md's tables, rendered from scripts/bench.py's results (its --write): the
tables are never typed by hand, so they say what one run measured."""

from __future__ import annotations

REFERENCE_ROWS = (  # result key, what ran
    ("baseline", "the tutorial's plain script (`scripts/bench_tutorial_baseline.py`)"),
    ("background", "`run.py`: figures drawn by 2 worker processes meanwhile (default)"),
    ("one_worker", "`run.py plots.workers=1`"),
    ("in_process", "`run.py plots.workers=0`: figures in the run's process"),
    ("no_plots", "`run.py plots.enabled=false`"),
)
HOUR_ROWS = (
    ("floor", "floor: start Python, import torch, read the file, write the same WAV bytes"),
    ("run.py", "`run.py` streamed, default outputs (plots, report)"),
    ("run.py plots off", "... `plots.enabled=false`"),
    ("... no I/O threads", "... `plots.enabled=false stream.background_io=false`"),
)


def markdown(results: dict) -> str:
    machine = results["machine"]
    parts = [f"Measured by `make bench` on "
             f"{machine['summary']}; load average {results['load_before']} before, "
             f"{results['load_after']} after. Wall times are whole processes, start-up "
             "included, medians of interleaved runs.\n"]
    for name, render in (("reference", _reference), ("corpus", _corpus), ("hour", _hour),
                         ("forward", _forward), ("vocoder", _vocoder)):
        if name in results:
            parts.append(render(results[name], results))
    return "\n".join(parts)


def _table(header: tuple[str, ...], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _reference(ref: dict, results: dict) -> str:
    m, base = ref["medians_s"], ref["medians_s"]["baseline"]
    rows = []
    for key, what in REFERENCE_ROWS:
        goal = ref["goals"].get(key)
        verdict = "" if goal is None else f" (goal ≤ {goal:.1f}: " \
            f"{'met' if m[key] / base <= goal else 'not met'})"
        rows.append((what, f"{m[key]:.2f}", f"{m[key] / base:.2f}{verdict}"))
    return (f"**The reference example end to end** (median of {results['repeat']}):\n\n"
            + _table(("what ran", "wall s", "× tutorial script"), rows))


def _corpus(corpus: dict, results: dict) -> str:
    rates = corpus["files_per_s"]
    rows = [("`run.py data.path=<folder>` (default corpus settings)",
             f"{rates['convscope']:.2f}", "–"),
            ("plain loop: librosa.load + the same torch stack + soundfile.write",
             f"{rates['loop']:.2f}", f"{corpus['ratio']:.2f}"),
            ("the same loop with oneDNN off", f"{rates['loop_onednn_off']:.2f}",
             f"{corpus['ratio_onednn_off']:.2f}")]
    return (f"**A corpus**: {corpus['files']} synthetic clips of LJSpeech's lengths "
            f"(22,050 Hz, 1.1–10.1 s, mean 6.6 s), median of {results['corpus_repeat']}:\n\n"
            + _table(("what ran", "files/s", "convscope ÷ this"), rows))


def _hour(hour: dict, results: dict) -> str:
    parts = hour["floor_parts"]
    rows = [(what, f"{hour[key]['wall_s']:.2f}", f"{hour[key]['ratio_to_floor']:.2f}",
             f"{hour[key]['peak_rss_mb']:.0f} MB") for key, what in HOUR_ROWS]
    return ("**An hour of 16 kHz through the reference stack**, streamed, float WAVs "
            f"written ({parts['bytes_written'] / 1e9:.2f} GB; median of {results['repeat']}; "
            f"floor parts: import torch {parts['import_torch_s']:.2f} s, read "
            f"{parts['read_s']:.2f} s, write {parts['write_s']:.2f} s):\n\n"
            + _table(("what ran", "wall s", "× floor", "peak RSS"), rows))


def _forward(forward: dict, results: dict) -> str:
    rows = [(row["mode"], _minutes(row["audio_s"]), f"{row['forward_s']:.2f}",
             f"{row['s_per_audio_hour']:.2f}", f"{row['peak_rss_mb']:.0f} MB")
            for row in forward["forward"]]
    e2e = [(_minutes(row["audio_s"]), f"{row['wall_s']:.2f}", f"{row['s_per_audio_hour']:.1f}",
            f"{row['peak_rss_mb']:.0f} MB") for row in forward["end_to_end"]]
    return ("**The reference stack's forward alone**, over noise (one-shot where it fits):\n\n"
            + _table(("mode", "audio", "s", "s per audio-hour", "peak RSS"), rows)
            + "\n**`run.py` streamed end to end** (read, forward, float WAVs, plots, "
            "report):\n\n"
            + _table(("audio", "wall s", "s per audio-hour", "peak RSS"), e2e))


def _vocoder(rows: list[dict], results: dict) -> str:
    table = [(row["device"], f"{row['audio_s']:.0f}", f"{row['wall_s']:.2f}", f"{row['rtf']:.2f}",
              f"{row['forward_rtf']:.2f}", f"{row['peak_rss_mb']:.0f} MB") for row in rows]
    gpu = "" if results["machine"]["gpu"] else " No GPU on this machine: no CUDA row."
    return ("**hifigan_v1, `run.py model=hifigan_v1` streamed end to end** (imports, log-mel, "
            "the stack in blocks, float WAVs; plots off). × real time = audio s ÷ wall s; the "
            "forward alone is the frontend, blocks and WAV after imports and build." + gpu
            + "\n\n" + _table(("device", "audio s", "wall s", "× real time",
                                "forward alone × real time", "peak RSS"), table))


def _minutes(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds / 60:g} min"

