"""The benchmark's tables, each built from the cached runs and evaluations of ``runner``.

One function per table, in the report's order. Every accuracy carries its 95% Wilson
interval (``ci``); models trained with several seeds show the pooled interval and the
mean and standard deviation over seeds.
"""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING

import torch

from crnn.bench import complexity, peer_ocr, throughput
from crnn.bench.report import Table
from crnn.bench.stats import mcnemar_exact, mean_std, wilson
from crnn.checkpoint import load_model
from crnn.data.images import decode_images
from crnn.data.sources import load_samples
from crnn.inference import Reader
from crnn.metrics import score
from crnn.models import ModelConfig, head_of

if TYPE_CHECKING:
    from crnn.bench.runner import Bench, Run, TestSet

ALPHA = 0.05  # significance level of the paired comparisons
NEVER_CORRECT = "never left the blank plateau: give it more images"


def by_model(runs: list[Run]) -> list[list[Run]]:
    """Runs grouped by model and data (one group per model, its seeds inside), in order."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.plan.title, r.data), []).append(r)
    return list(groups.values())


def test_sets(group: list[Run], tests: list[TestSet], real_test: TestSet | None
              ) -> list[TestSet]:
    return [real_test] if group[0].data == "real" and real_test else tests


def _model_costs(run: Run) -> dict:
    model, cfg, _ = load_model(run.ckpt)
    return {"parameters": complexity.count_parameters(model),
            "mmacs": complexity.count_macs(model, cfg.height, cfg.width) / 1e6,
            "size_mb": complexity.size_mb(model)}


def _longest(run: Run) -> int:
    """The longest text the trained model can emit (its head's capacity)."""
    config = ModelConfig.from_dict(json.loads((run.path / "config.json").read_text())["model"])
    return config.head.longest(config)


def budget_status(run: Run) -> str:
    """'' for a run that used its budget and learnt something, else what went wrong."""
    s, cfg = run.summary, json.loads((run.path / "config.json").read_text())["train"]
    notes = []
    if cfg.get("images") and s.get("images_seen", cfg["images"]) < cfg["images"]:
        notes.append(f"cut short by the {cfg['minutes']:g}-minute cap after "
                     f"{s['images_seen']:,} of {cfg['images']:,} images")
    if s.get("first_correct_s") is None:
        notes.append(NEVER_CORRECT)
    return "; ".join(notes)


def pooled(evals: list[dict]) -> dict:
    """Sequence accuracy pooled over seeds with its Wilson interval, and the seeds' spread."""
    k = sum(sum(e["correct"]) for e in evals)
    n = sum(len(e["correct"]) for e in evals)
    mean, std = mean_std([e["sequence_accuracy"] for e in evals])
    return {"sequence_accuracy": k / n if n else 0.0, "ci": list(wilson(k, n)),
            "seeds": len(evals), "seed_mean": mean, "seed_std": std}


ACC_COLUMNS = [("sequence_accuracy", "sequence acc.", ".4f"), ("ci", "95% CI", "ci")]


def accuracy_table(b: Bench, runs: list[Run], tests: list[TestSet],
                   real_test: TestSet | None) -> Table:
    t = Table("accuracy", "1. Accuracy: model x test set", [
        ("model", "model", ""), ("test_set", "test set", ""), ("n", "n", "d"), *ACC_COLUMNS,
        ("seeds", "seeds", "d"), ("seed_mean", "mean over seeds", ".4f"),
        ("seed_std", "± std over seeds", ".4f"),
        ("char_accuracy", "char acc.", ".4f"), ("ned", "NED", ".4f"),
        ("parameters", "params", ","), ("mmacs", "MMACs", ".1f"),
        ("size_mb", "size (MB)", ".2f"), ("overlap", "test images in training", "d"),
        ("note", "note", "")],
        keys=("model", "test_set"))
    for group in by_model(runs):
        first = group[0]
        costs = _model_costs(first)
        status = "; ".join(sorted({s for s in map(budget_status, group) if s}))
        for test in test_sets(group, tests, real_test):
            evals = [b.evaluate(r, test) for r in group]
            notes = [status] if status else []
            longest = max(len(s) for s in evals[0]["labels"])
            if longest > _longest(first):
                notes.append(f"cannot emit more than {_longest(first)} characters")
            t.rows.append({
                "model": first.plan.title, "test_set": test.name, "n": evals[0]["n"],
                **pooled(evals),
                "char_accuracy": mean_std([e["char_accuracy"] for e in evals])[0],
                "ned": mean_std([e["ned"] for e in evals])[0], **costs,
                "overlap": b.overlaps.get(test.name, 0), "note": "; ".join(notes)})
    t.notes += [
        "95% CI: the Wilson interval of the sequence accuracy over all n x seeds readings "
        "(pooled over seeds). With several seeds, 'sequence acc.' is the pooled accuracy "
        "(equal to the mean over seeds, as every seed reads the same images) and "
        "'± std over seeds' the sample standard deviation of the seeds' accuracies.",
        "Each model is trained with the same budget, counted in training images, on the "
        "same images, so the accuracies do not depend on the machine; the training time "
        "does (see 'Training runs'). Synthetic models are evaluated at their best "
        "validation checkpoint, real-set models at their final weights.",
        "test images in training: images of the test set whose decoded pixels equal a "
        "training image's (refused unless --allow-overlap)."]
    if real_test:
        t.notes.append("Real set: scikit-learn's train_test_split(test_size=0.1, "
                       "random_state=42) on the sorted file list; the test part is watched "
                       "during training but never used to choose weights.")
    return t


def significance_table(b: Bench, runs: list[Run], tests: list[TestSet],
                       real_test: TestSet | None) -> Table:
    """Every pair of models on every test set they share: the exact McNemar test."""
    t = Table("significance", "2. Is the difference real? Paired comparisons", [
        ("test_set", "test set", ""), ("model_a", "model A", ""), ("model_b", "model B", ""),
        ("accuracy_a", "acc. A", ".4f"), ("accuracy_b", "acc. B", ".4f"),
        ("only_a", "only A right", "d"), ("only_b", "only B right", "d"),
        ("p_value", "p (exact McNemar)", ".4g"), ("verdict", "verdict", "")],
        keys=("test_set", "model_a", "model_b"))
    groups = by_model(runs)
    for test in [*tests, *([real_test] if real_test else [])]:
        firsts = [g[0] for g in groups if test in test_sets(g, tests, real_test)]
        for ra, rb in itertools.combinations(firsts, 2):
            ea, eb = b.evaluate(ra, test), b.evaluate(rb, test)
            only_a = sum(x and not y for x, y in zip(ea["correct"], eb["correct"]))
            only_b = sum(y and not x for x, y in zip(ea["correct"], eb["correct"]))
            p = mcnemar_exact(only_a, only_b)
            t.rows.append({
                "test_set": test.name, "model_a": ra.plan.title, "model_b": rb.plan.title,
                "accuracy_a": ea["sequence_accuracy"], "accuracy_b": eb["sequence_accuracy"],
                "only_a": only_a, "only_b": only_b, "p_value": p,
                "verdict": (f"{'A' if only_a > only_b else 'B'} better (p < {ALPHA})"
                            if p < ALPHA else "within the noise")})
    t.notes.append("Both models read the same images; only the images one reads right and "
                   "the other wrong tell them apart. The exact McNemar test asks whether "
                   "these split more unevenly than a fair coin would (two-sided binomial, "
                   f"significant at {ALPHA}). Models trained with several seeds are compared "
                   "on their first seed's run.")
    return t


def length_table(b: Bench, runs: list[Run], tests: list[TestSet]) -> Table:
    t = Table("by_length", "3. Accuracy by label length", [
        ("model", "model", ""), ("length", "length", "d"), ("n", "n", "d"), *ACC_COLUMNS],
        keys=("model", "length"))
    for group in (g for g in by_model(runs) if g[0].data == "synthetic"):
        labels, preds = [], []
        for run in group:
            for test in tests[:1] + tests[2:]:  # the fixed-length set repeats a training length
                m = b.evaluate(run, test)
                labels += m["labels"]
                preds += m["predictions"]
        for length, v in score(labels, preds)["by_length"].items():
            k = round(v["sequence_accuracy"] * v["n"])
            t.rows.append({"model": group[0].plan.title, "length": int(length), "n": v["n"],
                           "sequence_accuracy": v["sequence_accuracy"],
                           "ci": list(wilson(k, v["n"]))})
    t.notes.append("Lengths from the in-distribution test set and the unseen-length sets "
                   "(all seeds pooled); texts longer than the training ones are drawn with "
                   "fonts scaled by (longest training length / length) so that they fit the "
                   "same canvas.")
    return t


def confusion_table(b: Bench, runs: list[Run], tests: list[TestSet],
                    real_test: TestSet | None, top: int = 5) -> Table:
    t = Table("confusions", "4. Most frequent misreadings (character confusions)", [
        ("model", "model", ""), ("test_set", "test set", ""), ("true", "true", ""),
        ("read", "read as", ""), ("count", "count", "d")],
        keys=("model", "test_set", "true", "read"))
    for group in by_model(runs):
        test = test_sets(group, tests, real_test)[0]
        for c in b.evaluate(group[0], test)["confusions"][:top]:
            t.rows.append({"model": group[0].plan.title, "test_set": test.name,
                           "true": c["true"], "read": c["predicted"], "count": c["count"]})
    t.notes.append(f"The {top} most frequent character substitutions of each model's first "
                   "seed on its main test set (from one best edit alignment per image); the "
                   "grids below show whole misread images, truth -> reading.")
    return t


def training_table(runs: list[Run]) -> Table:
    t = Table("training", "5. Training runs", [
        ("model", "model", ""), ("data", "data", ""), ("seed", "seed", "d"),
        ("device", "device", ""), ("steps", "steps", "d"),
        ("images_seen", "images", ","), ("train_seconds", "train time (s)", ".0f"),
        ("images_per_s", "images/s", ".0f"), ("data_wait_fraction", "data wait", ".3f"),
        ("first_correct_s", "first correct (s)", ".1f"),
        ("best_val_sequence_accuracy", "best val acc.", ".4f"), ("status", "status", "")],
        keys=("model", "data", "seed"))
    for run in runs:
        s = run.summary
        t.rows.append({"model": run.plan.title, "data": run.data, "seed": run.seed, **{
            k: s.get(k) for k in ("device", "steps", "images_seen", "train_seconds",
                                  "images_per_s", "data_wait_fraction", "first_correct_s",
                                  "best_val_sequence_accuracy")},
            "status": budget_status(run) or "ok"})
    t.notes += ["first correct: training time until a training batch first held a "
                "correctly read string (how long the CTC blank plateau lasted); n/a: never.",
                "data wait: share of the training time spent waiting for the next batch "
                "(near 0: the device, not data loading, sets the pace)."]
    return t


def provenance_table(runs: list[Run], code: dict) -> Table:
    """Which code trained each model: a cached model of other code is never passed off."""
    t = Table("provenance", "6. Provenance: the code each model was trained with", [
        ("model", "model", ""), ("data", "data", ""), ("seed", "seed", "d"),
        ("trained", "trained at", ""), ("commit", "commit", ""), ("code_hash", "code hash", ""),
        ("status", "relation to this report's code", "")], keys=("model", "data", "seed"))
    for run in runs:
        p = run.provenance
        commit = f"{p['git_commit']}{'+dirty' if p['dirty'] else ''}" if p else "unknown"
        if not p:
            status = "UNKNOWN: no provenance recorded (trained by other code?)"
        elif p["code_hash"] != code["code_hash"]:
            status = "OTHER CODE: trained by different sources"
        elif p["git_commit"] != code["git_commit"]:
            status = f"same sources as this report, trained at commit {commit}"
        else:
            status = "this commit" + (" (with uncommitted edits)" if p["dirty"] else "")
        t.rows.append({"model": run.plan.title, "data": run.data, "seed": run.seed,
                       "trained": p.get("date", "unknown"), "commit": commit,
                       "code_hash": p.get("code_hash", "unknown"), "status": status})
    t.notes.append(f"This report's code: commit {code['git_commit']}"
                   f"{' with uncommitted edits' if code['dirty'] else ''}, code hash "
                   f"{code['code_hash']} (sha256 of every .py file of captchagen, crnn and "
                   "plumbing). Cached models are keyed by this hash, so a changed source "
                   "retrains them.")
    return t


def _ctc_run(runs: list[Run]) -> Run | None:
    """The run whose outputs the decoding table times: a CTC model on synthetic data, the
    CRNN when there is one."""
    ctc = [r for r in runs if r.data == "synthetic" and head_of(r.plan.name).kind == "ctc"]
    return next((r for r in ctc if r.plan.name == "crnn"), ctc[0] if ctc else None)


def decoding_table(b: Bench, runs: list[Run], test: TestSet) -> Table:
    """Decoders on two kinds of log-probabilities: a trained CTC model's own outputs on the
    test images, and the synthetic peaked 2048 x 40 x 37 logits the decoding targets use."""
    from crnn.bench import decode_speed

    t = Table("decoding", "CTC decoding: implementation x batch size", [
        ("logits", "logits", ""), ("implementation", "implementation", ""),
        ("device", "device", ""), ("batch_size", "batch", "d"),
        ("sequences_per_s", "sequences/s", ",.0f"),
        ("sequences_per_s_range", "range over rounds", "range"),
        ("us_per_sequence", "µs/sequence", ".2f"),
        ("speedup_vs_reference", "speed-up vs loop", ".1f"),
        ("agreement_with_reference", "agreement with loop", ".4f"),
        ("agreement_with_pyctcdecode", "agreement with pyctcdecode", ".4f"),
        ("note", "note", "")], keys=("logits", "implementation", "device", "batch_size"))
    p = b.suite.decode
    run = _ctc_run(runs)
    for device in b.devices:
        sources = []
        if run is not None:
            reader = Reader.from_checkpoint(run.ckpt, device)
            samples = load_samples(test.path)
            images, _ = decode_images(samples.paths, reader.config.height, reader.config.width)
            # In bounded chunks: one forward over a whole test set would hold all of its
            # activations at once (10,000 images at 32x128: ~10 GB at the first conv).
            lp = torch.cat([reader.forward(images[i : i + 256]).to(device)
                            for i in range(0, len(images), 256)], dim=1)
            lp = lp.repeat(1, -(-p.rows // lp.shape[1]), 1)[:, : p.rows].contiguous()
            sources.append((f"{run.plan.title} outputs", lp, reader.config.charset))
        synthetic = decode_speed.peaked_log_probs(p.rows, device=device)
        charset = decode_speed.default_charset(synthetic.shape[2] - 1)
        sources.append(("synthetic peaked", synthetic, charset))
        for name, lp, charset in sources:
            rows = decode_speed.run_decode_benchmark(lp, charset, batch_sizes=p.batch_sizes,
                                                     beam_width=p.beam_width,
                                                     min_seconds=p.min_seconds,
                                                     repeats=p.repeats)
            # Each row keeps its rounds' range; the rounds themselves are not a column.
            t.rows += [{"logits": name, **{k: v for k, v in r.items()
                                           if k != "rounds_sequences_per_s"}} for r in rows]
            t.notes.append(f"{device}, {name}: log-probabilities of shape {tuple(lp.shape)} "
                           "(T, N, C).")
    if run is not None:
        t.notes.append(f"{run.plan.title} outputs: the model's log-probabilities on "
                       f"{test.name}, repeated to fill the rows.")
    t.notes.append("synthetic peaked: decode_speed.peaked_log_probs, 4-6 symbols per row, "
                   "moderately sharp (the logits of the decoding speed targets).")
    missing = decode_speed.missing_peers()
    if missing:
        t.notes.append(f"Not installed, so not measured: {', '.join(missing)} "
                       "(pip install '.[peers]').")
    return t


RUNTIMES = {"cpu": [("torch", {"backend": "torch"}), ("onnxruntime", {"backend": "onnx"})],
            "cuda": [("torch fp32", {"backend": "torch"}),
                     ("torch amp", {"backend": "torch", "amp": True})]}


def throughput_table(b: Bench, runs: list[Run], test: TestSet) -> Table:
    p = b.suite.throughput
    t = Table("throughput", "7. Throughput and latency: model x device x batch size", [
        ("model", "model", ""), ("device", "device", ""), ("runtime", "runtime", ""),
        ("batch_size", "batch", "d"), ("images_per_s", "images/s", ",.0f"),
        ("model_images_per_s", "images/s (model only)", ",.0f"),
        ("pipelined_images_per_s", "images/s (pipelined)", ",.0f"),
        ("pipelined_vs_model", "pipelined / model only", ".2f"), ("p50_ms", "p50 ms", ".2f"),
        ("p95_ms", "p95 ms", ".2f"), ("preprocess_ms", "preprocess ms", ".2f"),
        ("forward_ms", "forward ms", ".2f"), ("decode_ms", "decode ms", ".2f"),
        ("warmup", "warm-up", "d"), ("repeats", "repeats", "d")],
        keys=("model", "device", "runtime", "batch_size"))
    blobs = [pth.read_bytes() for pth in load_samples(test.path).paths[:512]]
    threads = torch.get_num_threads()
    torch.set_num_threads(p.threads)
    try:
        for run in (g[0] for g in by_model(runs) if g[0].data == "synthetic"):
            for device in b.devices:
                for runtime, kw in RUNTIMES[device]:
                    reader = Reader.from_checkpoint(run.ckpt, device, threads=p.threads, **kw)
                    for bs in p.batch_sizes:
                        row = throughput.measure_reader(
                            reader, blobs, bs, throughput.repeats_for(bs, p.warmup),
                            throughput.repeats_for(bs, p.repeats), p.min_seconds)
                        t.rows.append({"model": run.plan.title, "device": device,
                                       "runtime": runtime, **row})
    finally:
        torch.set_num_threads(threads)
    t.notes += [f"CPU rows use {p.threads} threads. Each call reads encoded PNG files to "
                "strings: preprocessing (PNG decoding, grayscale, resize), forward pass and "
                "greedy decoding are timed apart; images/s counts all three, 'model only' "
                "the forward pass and decoding. Pipelined: batches stream from bytes to "
                "texts, the next batch decoding on a thread pool during this one's forward "
                "pass. Each row repeats its calls for at least the suite's min_seconds.",
                "torch: eager PyTorch with batch norms folded into the convolutions, "
                "channels-last; onnxruntime: the exported ONNX graph (crnn export), the "
                "default for CPU inference. CUDA rows are timed with CUDA events; "
                "amp = bf16/fp16 autocast."]
    return t


def _latency(tp: Table, title: str) -> dict | None:
    return next((r for r in tp.rows if r["model"] == title and r["device"] == "cpu"
                 and r["runtime"] == "onnxruntime" and r["batch_size"] == 1), None)


def head_to_head_table(b: Bench, runs: list[Run], sets: list[TestSet | None],
                       tp: Table) -> Table:
    """Our models and ddddocr on the same images: the main synthetic test set, and the
    real test set when there is one."""
    t = Table("head_to_head", "8. Head-to-head with a ready-made solver (same test images)", [
        ("test_set", "test set", ""), ("solver", "solver", ""), ("n", "n", "d"),
        *ACC_COLUMNS, ("p50_ms", "p50 ms/image", ".2f"),
        ("p95_ms", "p95 ms/image", ".2f"), ("note", "note", "")], keys=("test_set", "solver"))
    n = b.suite.ddddocr_n
    version = peer_ocr.ddddocr_version()
    for test in (s for s in sets if s is not None):
        samples = load_samples(test.path)
        labels = list(samples.labels[:n])
        for group in by_model(runs):
            if (group[0].data == "real") != test.real:
                continue
            correct = b.evaluate(group[0], test)["correct"][:n]
            lat = _latency(tp, group[0].plan.title)
            t.rows.append({"test_set": test.name, "solver": group[0].plan.title,
                           "n": len(correct), "sequence_accuracy": sum(correct) / len(correct),
                           "ci": list(wilson(sum(correct), len(correct))),
                           "p50_ms": lat["p50_ms"] if lat else None,
                           "p95_ms": lat["p95_ms"] if lat else None,
                           "note": "batch 1 on CPU (onnxruntime), from PNG bytes"})
        if version is None:
            continue
        threads = torch.get_num_threads()
        r = peer_ocr.run_ddddocr([p.read_bytes() for p in samples.paths[:n]], labels)
        torch.set_num_threads(threads)
        k = round(r["sequence_accuracy"] * r["n"])
        t.rows.append({"test_set": test.name, "solver": f"ddddocr {version}", "n": r["n"],
                       "sequence_accuracy": r["sequence_accuracy"],
                       "ci": list(wilson(k, r["n"])), "p50_ms": r["p50_ms"],
                       "p95_ms": r["p95_ms"],
                       "note": f"case-folded accuracy {r['sequence_accuracy_casefold']:.4f}; "
                               "from PNG bytes"})
    t.notes.append(f"The first {n} images of each test set; our models' latency is their "
                   "batch-1 p50 on the synthetic images (same architecture and input size).")
    if version is None:
        t.notes.append("ddddocr is not installed, so it is not measured "
                       "(pip install '.[peers]').")
    return t


def environment_table(b: Bench, suite, env: dict) -> Table:
    t = Table("environment", "9. Environment", [("key", "what", ""), ("value", "value", "")],
              keys=("key",))
    t.rows = [{"key": k, "value": str(v)} for k, v in env.items()]
    t.rows += [{"key": "code hash", "value": b.code["code_hash"]},
               {"key": "seed", "value": str(suite.seed)},
               {"key": "suite file", "value": suite.source},
               {"key": "training device", "value": b.train_device},
               {"key": "measured devices", "value": ", ".join(b.devices)}]
    t.notes += b.notes
    return t
