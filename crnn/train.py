"""Training: one direct loop, in the spirit of nanoGPT's ``train.py``.

Data -> model -> AdamW with a warm-up schedule -> CTC (or per-head) loss -> clip -> step,
with a validation pass, best/last checkpoints and a CSV log at every evaluation. Runs on
one device or under ``torchrun`` (DistributedDataParallel).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from crnn import finetune, leakage
from crnn.checkpoint import read_checkpoint, save_checkpoint
from crnn.data.augment import augment
from crnn.data.batches import EpochBatches, GeneratedBatches, LazyImages
from crnn.data.images import decode_images, fits_in_memory, normalize
from crnn.data.several import source_root, split_sources
from crnn.data.shards import ShardBatches, is_shard_pattern, open_shards, read_all
from crnn.data.sources import Samples, load_samples, split
from crnn.distributed import Dist, agree, barrier, init_distributed, shutdown
from crnn.evaluate import evaluate
from crnn.inference import Reader, amp_by_default, pick_device
from crnn.labels import charset_from_labels, check_labels
from crnn.models import SIZES, ModelConfig, create_model
from crnn.models.config import MODEL_NAMES
from crnn.paths import refuse_onto
from crnn.schedule import lr_factor
from plumbing.allocator import keep_freed_memory
from plumbing.config import check_fields, knob
from plumbing.errors import UsageError
from plumbing.files import LOCK_NAME, exclusive_lock, write_json

# Settings a resumed run may change; everything else must match the run it continues.
RESUMABLE_CHANGES = {"epochs", "minutes", "patience", "progress", "workers", "threads", "resume",
                     "device", "overwrite", "images", "allow_overlap"}


ON_OFF = ("auto", "on", "off")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``crnn train`` takes; its options are generated from these fields."""

    data: str = knob(help="captchagen dataset, folder of labelled images, or WebDataset shards "
                           "('dir/shard-{000000..000009}.tar' or a glob); join several with "
                           "commas.")
    out: str = knob(help="Run directory (checkpoints, metrics.csv, curve).")
    model: str = knob("crnn", "Model kind.", choices=MODEL_NAMES)
    size: str = knob("small", "Trunk width.", choices=tuple(SIZES))
    height: int = knob(32, "Input height (a multiple of 16).", lo=16, hi=256)
    width: int = knob(128, "Input width (a multiple of 4).", lo=16, hi=2048)
    max_len: int | None = knob(None, "cnn-fixed heads (default: longest label).", lo=1, hi=256)
    val: str | None = knob(None, "Validation set (default: --val-split of --data).")
    val_split: float = knob(0.1, "Held-out fraction of --data for validation.",
                            lo=0.001, hi=0.999)
    generate: bool = knob(False, "Train on fresh images from --data's captchagen spec "
                                 "(validate on --data).")
    epoch_size: int = knob(20_000, "Images per nominal epoch with --generate.",
                           lo=1, hi=100_000_000)
    epochs: int | None = knob(None, "Default 10, unless --minutes.", lo=1, hi=100_000)
    minutes: float | None = knob(None, "Wall-clock training budget (or cap, with --images).",
                                 lo=0.001, hi=60 * 24 * 30)
    # A budget in training images (all ranks together): the same run on any machine, only
    # sooner or later; the learning-rate schedule follows the images seen.
    images: int | None = knob(None, "Training budget in images (the same run on any machine).",
                              lo=1, hi=10**11)
    batch_size: int = knob(64, "Images per step.", lo=1, hi=65536)
    lr: float = knob(3e-3, "Peak learning rate (AdamW).", lo=1e-9, hi=10.0)
    weight_decay: float = knob(0.01, "AdamW weight decay.", lo=0.0, hi=10.0)
    schedule: str = knob("onecycle", "Learning-rate schedule.",
                         choices=("onecycle", "cosine", "constant"))
    warmup: float = knob(0.1, "Warm-up, as a fraction of the run.", lo=0.0, hi=1.0)
    grad_clip: float = knob(5.0, "Gradient norm clip.", lo=1e-6, hi=1e6)
    patience: int | None = knob(None, "Stop after this many evaluations without a better "
                                      "validation accuracy.", lo=1, hi=1_000_000)
    eval_every: int | None = knob(None, "Steps between evaluations.", lo=1, hi=100_000_000)
    eval_seconds: float = knob(60.0, "On a --minutes budget, also evaluate after this much "
                                     "training time.", lo=0.1, hi=7 * 86400)
    augment: str = knob("auto", "auto: on for folders of real images, off for generated.",
                        choices=ON_OFF)
    device: str = knob("auto", "Where to train.", choices=DEVICES)
    deterministic: bool = knob(False, "Repeatable CUDA runs: cuDNN's deterministic kernels, "
                                      "no autotuning, no TF32 (slower; the CPU always is).")
    amp: str = knob("auto", "Mixed precision (auto: on for CUDA and for CPUs with native "
                    "bfloat16).", choices=ON_OFF)
    channels_last: str = knob("auto", "Channels-last memory (auto: on).", choices=ON_OFF)
    # numpy's RandomState (the validation split) takes seeds below 2**32
    seed: int = knob(0, "Random seed.", lo=0, hi=2**31 - 1)
    workers: int | None = knob(None, "Data processes (0: none, data is made in the training "
                                      "process; default: by the cores; capped by the work).",
                               lo=0, hi=1024)
    threads: int | None = knob(None, "torch CPU threads.", lo=1, hi=1024)
    skip_bad: bool = knob(False, "Leave unreadable images out (and count them).")
    resume: bool = knob(False, "Continue the run in --out from last.ckpt.")
    overwrite: bool = knob(False, "Start the run in --out afresh (removes only its run "
                                  "files).")
    init: str | None = knob(None, "Fine-tune: a new run starting from this checkpoint's "
                                  "weights (the charset and, for CTC models, the width may "
                                  "differ).", metavar="CKPT")
    freeze_trunk: int = knob(0, "With --init: keep the conv trunk frozen for this many steps.",
                             lo=0, hi=100_000_000, metavar="STEPS")
    allow_overlap: bool = knob(False, "Train although validation images are also training "
                                      "images (counted in config.json).")
    progress: bool = knob(True, "Progress bar.", cli=False)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.height % 16 or self.width % 4:
            raise UsageError(f"--height must be a multiple of 16 and --width of 4, got "
                             f"{self.height} and {self.width}")
        if self.resume and self.overwrite:
            raise UsageError("--resume and --overwrite exclude each other")
        if self.freeze_trunk < 0 or (self.freeze_trunk and not self.init):
            raise UsageError("--freeze-trunk takes a number of steps >= 0, with --init")

    @property
    def planned_epochs(self) -> int | None:
        budget = (self.epochs, self.minutes, self.images)
        return self.epochs if any(b is not None for b in budget) else 10


@dataclass
class Data:
    train: EpochBatches | GeneratedBatches | ShardBatches
    val_images: Tensor
    val_labels: list[str]
    charset: str
    max_len: int
    origin: str
    train_hashes: Tensor | None = None  # pixel hashes of the training images (leakage checks)
    val_overlap: int = 0  # validation images that are also training images (--allow-overlap)


def prepare_data(cfg: TrainConfig, d: Dist) -> Data:
    """Read, check and decode the data; validation images are cached once."""
    if any(is_shard_pattern(x) for x in split_sources(cfg.data)):
        return _prepare_shards(cfg, d)
    samples = load_samples(cfg.data)
    if cfg.generate:
        if samples.spec is None:
            raise UsageError("--generate needs a captchagen dataset (its spec draws the images)")
        train_samples, val_samples = None, samples
        if cfg.val:
            val_samples = load_samples(cfg.val)
    elif cfg.val:
        train_samples, val_samples = samples, load_samples(cfg.val)
    else:
        train_samples, val_samples = split(samples, cfg.val_split, cfg.seed)
    # A folder declares no charset: its labels, training and validation together, do.
    labels = (train_samples.labels if train_samples else ()) + val_samples.labels
    charset = samples.charset or charset_from_labels(labels)
    if train_samples is not None:
        check_labels(train_samples.labels, charset, f"training labels of {cfg.data}")
    check_labels(val_samples.labels, charset, "validation labels")
    longest = max(val_samples.max_len, train_samples.max_len if train_samples else 0,
                  samples.spec.max_len if cfg.generate and samples.spec else 0)

    val_images, val_labels = _decode(val_samples, cfg)
    if cfg.generate:
        # A seed of its own, so training images never repeat the validation set's.
        train: EpochBatches | GeneratedBatches = GeneratedBatches(
            samples.spec, cfg.seed + 1_000_003, cfg.batch_size, cfg.height, cfg.width,
            cfg.epoch_size, cfg.workers, d.rank, d.world)
    else:
        assert train_samples is not None
        if fits_in_memory(len(train_samples), cfg.height, cfg.width):
            images, labels = _decode(train_samples, cfg)
        else:
            images = LazyImages(list(train_samples.paths), cfg.height, cfg.width)
            labels = list(train_samples.labels)
        train = EpochBatches(images, labels, cfg.batch_size, cfg.seed, d.rank, d.world)
    hashes, overlap = check_leakage(cfg, train_samples, val_samples)
    return Data(train, val_images, val_labels, charset, longest, samples.origin, hashes, overlap)


def check_leakage(cfg: TrainConfig, train: Samples | None, val: Samples
                  ) -> tuple[Tensor | None, int]:
    """Refuse validation images that are training images too (by decoded pixels, unless
    --allow-overlap); the training hashes go into the checkpoints so ``crnn eval`` checks."""
    if train is None:  # --generate: fresh images, drawn with a seed of their own
        return None, 0
    hashes = leakage.pixel_hashes(train.paths, cfg.workers or 4)
    what = f"the validation set {cfg.val}" if cfg.val else f"the validation split of {cfg.data}"
    n = leakage.guard(what, leakage.pixel_hashes(val.paths, cfg.workers or 4), hashes,
                      cfg.allow_overlap)
    if n:
        print(f"crnn: {n} validation images are also training images (--allow-overlap)")
    return leakage.to_tensor(hashes), n


def _prepare_shards(cfg: TrainConfig, d: Dist) -> Data:
    """WebDataset shards, streamed; validation on --val, else on the last shard (held out)."""
    if cfg.generate:
        raise UsageError("--generate draws from a captchagen dataset's spec, not from shards")
    shards = open_shards(cfg.data)
    if cfg.val and not any(is_shard_pattern(x) for x in split_sources(cfg.val)):
        val_images, val_labels = _decode(load_samples(cfg.val), cfg)
    elif cfg.val:
        val_images, val_labels = read_all(open_shards(cfg.val).files, cfg.height, cfg.width)
    elif len(shards.files) < 2:
        raise UsageError("one shard cannot be split into training and validation: "
                         "add --val (a dataset or shards of its own)")
    else:
        val_images, val_labels = read_all(shards.files[-1:], cfg.height, cfg.width)
        shards = shards.part(slice(0, -1))
    charset = shards.charset or charset_from_labels(val_labels)
    check_labels(val_labels, charset, "validation labels")
    longest = max([len(t) for t in val_labels] + [s.max_len for s in shards.specs])
    train = ShardBatches(shards, cfg.batch_size, cfg.height, cfg.width, cfg.seed, cfg.workers,
                         d.rank, d.world)
    return Data(train, val_images, val_labels, charset, longest,
                "captchagen" if shards.charset else "folder")


def _decode(samples: Samples, cfg: TrainConfig) -> tuple[Tensor, list[str]]:
    images, bad = decode_images(samples.paths, cfg.height, cfg.width, cfg.workers, cfg.skip_bad)
    if bad:
        print(f"crnn: skipped {len(bad)} unreadable images")
    skip = set(bad)
    return images, [s for i, s in enumerate(samples.labels) if i not in skip]


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on biases and normalisation parameters."""
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.ndim > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def train(cfg: TrainConfig) -> dict:
    """Train a model as ``cfg`` says; returns the final summary (also in ``summary.json``).

    Everything that can be refused (settings, data, capacity) is checked before the run
    directory is touched.
    """
    device = pick_device(cfg.device)
    d = init_distributed(device.type)
    if d.enabled and device.type == "cuda":
        device = torch.device("cuda", d.local_rank)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    elif d.enabled and device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // d.world))
    out = Path(cfg.out)
    try:
        check_run_dir(cfg, out)  # before the lock, which creates the directory
        with run_dir_lock(out, d.main):
            resume = check_run_dir(cfg, out)
            torch.manual_seed(cfg.seed)
            data = prepare_data(cfg, d)
            config = ModelConfig(name=cfg.model, charset=data.charset, size=cfg.size,
                                 height=cfg.height, width=cfg.width,
                                 max_len=cfg.max_len or data.max_len)
            config.head.check_capacity(config, data.max_len)
            init = finetune.check_init(cfg.init, config) if cfg.init else None
            if resume is not None and resume["model_config"] != config.to_dict():
                raise UsageError(f"cannot resume {out}: its checkpoint is for another model "
                                 f"or charset ({resume['model_config']['name']}, "
                                 f"{resume['model_config']['charset']!r})")
            if d.main:
                start_run_dir(out, resume)
                write_json(out / "config.json", {"train": _jsonable(cfg),
                                                 "model": config.to_dict(),
                                                 "world_size": d.world,
                                                 "val_overlap": data.val_overlap,
                                                 "init": init})
            barrier(d)
            summary = _fit(cfg, d, device, out, data, config, resume)
            if summary and init:
                summary["init"] = init
                write_json(out / "summary.json", summary)
            return summary
    finally:
        shutdown(d)


# What ``crnn train`` writes into a run directory; --overwrite removes these and nothing else.
RUN_FILES = ("best.ckpt", "last.ckpt", "metrics.csv", "curve.png", "summary.json",
             "config.json")


@contextlib.contextmanager
def run_dir_lock(out: Path, main: bool = True) -> Iterator[None]:
    """One ``crnn train`` per run directory. A run refused before it wrote anything leaves
    no trace: the lock file, and the directory if the lock made it, are removed again."""
    if not main:
        yield
        return
    existed, had_lock = out.exists(), (out / LOCK_NAME).exists()
    started = False
    try:
        with exclusive_lock(out, "run directory"):
            started = True
            yield
    except BaseException:
        if started and not (out / "config.json").exists():
            if not had_lock:
                (out / LOCK_NAME).unlink(missing_ok=True)
            if not existed:
                with contextlib.suppress(OSError):
                    out.rmdir()
        raise


def is_run_dir(out: Path) -> bool:
    """Whether ``out`` holds a run that ``crnn train`` started (its config.json)."""
    try:
        info = json.loads((out / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and {"train", "model"} <= set(info)


def check_run_dir(cfg: TrainConfig, out: Path) -> dict | None:
    """Refuse to clobber a run or an input; with ``--resume`` return the last checkpoint's
    state."""
    data = split_sources(cfg.data)
    inputs = {"--data" if len(data) == 1 else f"--data[{i}]": source_root(s)
              for i, s in enumerate(data)}
    refuse_onto(out, {**inputs, "--val": cfg.val and source_root(cfg.val)}, "--out")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a run directory")
    last = out / "last.ckpt"
    if cfg.resume:
        if not last.is_file():
            raise UsageError(f"nothing to resume: {last} does not exist")
        state = read_checkpoint(last, resumable=True)
        old = state["train_config"]
        differs = [k for k, v in asdict(cfg).items()
                   if k not in RESUMABLE_CHANGES and k in old and old[k] != v]
        if differs:
            raise UsageError(f"cannot resume {out}: it ran with other settings "
                             f"({', '.join(differs)} differ)")
        return state
    entries = [p for p in out.iterdir() if p.name != LOCK_NAME] if out.exists() else []
    if entries and not cfg.overwrite:
        raise UsageError(f"run directory {out} exists and is not empty: "
                         "add --resume to continue it or --overwrite to start again")
    if entries and not is_run_dir(out):
        raise UsageError(f"--overwrite: {out} is not a crnn run directory (no config.json of "
                         "crnn train) and not empty; it is left alone: choose another --out")
    return None


def start_run_dir(out: Path, resume: dict | None) -> None:
    """Make the run directory; on resume, drop log rows newer than the checkpoint (a kill
    can land between the two), so the log reads as if the run had never stopped."""
    out.mkdir(parents=True, exist_ok=True)
    if resume is None:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
        return
    log = out / "metrics.csv"
    if log.is_file():
        with open(log, newline="") as f:
            rows = list(csv.DictReader(f))
        keep = [r for r in rows if int(r["step"]) <= resume["trainer"]["step"]]
        if rows and len(keep) < len(rows):
            with open(log, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(keep)


@dataclass
class State:
    """Where training stands; saved in ``last.ckpt`` so that a resumed run continues."""

    step: int = 0
    elapsed: float = 0.0  # wall-clock seconds of the loop, evaluations included
    eval_seconds: float = 0.0  # ... of which spent evaluating and checkpointing
    images: int = 0  # training images seen, all ranks together
    data_wait: float = 0.0  # seconds spent waiting for the next batch (data loading)
    best: float = -1.0  # best validation sequence accuracy
    evals_without_gain: int = 0
    first_correct_s: float | None = None  # time until a sampled batch first held a correct reading


def _fit(cfg: TrainConfig, d: Dist, device: torch.device, out: Path, data: Data,
         config: ModelConfig, resume: dict | None) -> dict:
    cuda = device.type == "cuda"
    # Inputs have one fixed size (the batch's last partial step aside): let cuDNN time its
    # algorithms once and keep the fastest. That pick depends on timings, and TF32 rounds
    # convolutions to 10 mantissa bits: two CUDA runs of the same seed then end apart, which
    # --deterministic trades for speed (CTC's backward still adds atomically: rounding only).
    torch.backends.cudnn.benchmark = cuda and not cfg.deterministic
    if cfg.deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    if not cuda:
        keep_freed_memory()  # process-wide: see plumbing/allocator.py
    channels_last = cfg.channels_last != "off"
    amp = cfg.amp == "on" or (cfg.amp == "auto" and amp_by_default(device))
    amp_dtype = torch.bfloat16 if not cuda or torch.cuda.is_bf16_supported() else torch.float16
    model = create_model(config).to(device)
    if cfg.init and resume is None:
        finetune.init_from(model, cfg.init, config)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr,
                                  fused=cuda or None)
    scaler = torch.amp.GradScaler("cuda", enabled=amp and amp_dtype == torch.float16)
    use_augment = cfg.augment == "on" or (cfg.augment == "auto" and data.origin == "folder")
    aug_gen = torch.Generator().manual_seed(cfg.seed + 17)
    state = State()
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scaler.load_state_dict(resume["scaler"])
        state = State(**resume["trainer"])
        torch.set_rng_state(resume["rng"]["torch"])
        aug_gen.set_state(resume["rng"]["augment"])
    net = nn.parallel.DistributedDataParallel(
        model, device_ids=[d.local_rank] if cuda else None) if d.enabled else model

    spe = data.train.steps_per_epoch
    total_steps = cfg.planned_epochs * spe if cfg.planned_epochs else None
    if cfg.images:
        by_images = -(-cfg.images // (cfg.batch_size * d.world))
        total_steps = min(total_steps, by_images) if total_steps else by_images
    budget = cfg.minutes * 60 if cfg.minutes else None
    reader = Reader(model, config, device, amp=amp, channels_last=channels_last)
    log = _Log(out / "metrics.csv", d.main)
    bar = _bar(cfg, d, total_steps, state)

    def progress() -> float:
        return max([state.step / total_steps] if total_steps else []
                   + ([state.elapsed / budget] if budget else [])
                   + ([state.images / cfg.images] if cfg.images else []))

    window = _Window(device)
    last_eval, t_last, stop = state.elapsed, time.perf_counter(), False
    while not stop:
        epoch, start = divmod(state.step, spe)
        for images, texts in _timed(data.train.epoch(epoch, start), state):
            model.train()
            if cfg.freeze_trunk:
                finetune.set_trunk_frozen(model, state.step < cfg.freeze_trunk)
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * lr_factor(progress(), cfg.schedule, cfg.warmup)
            x = normalize(images, device, channels_last)
            if use_augment:
                x = augment(x, aug_gen)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
                outputs = net(x)
            loss = config.head.loss(outputs, texts, config)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()

            now = time.perf_counter()
            state.step += 1
            state.elapsed += now - t_last
            state.images += len(texts) * d.world
            t_last = now
            # No host sync per step: the loss adds up on the device, and the batch is decoded
            # (training accuracy, first correct reading) only every SAMPLE_EVERY steps.
            window.add(loss.detach(), len(texts) * d.world)
            sample = state.step % SAMPLE_EVERY == 0
            if sample:
                read, _ = config.head.read(outputs.detach().float(), config.charset)
                correct = sum(p == t for p, t in zip(read, texts))
                window.add_sample(correct, len(texts))
                if correct and state.first_correct_s is None:
                    state.first_correct_s = state.elapsed
            if bar is not None:
                bar.update(1)
                if sample:
                    bar.set_postfix(window.postfix(), refresh=False)

            done = (total_steps is not None and state.step >= total_steps) or (
                cfg.images is not None and state.images >= cfg.images)
            due = state.step % (cfg.eval_every or spe) == 0
            if budget is not None and (sample or done or due or not d.enabled):
                # Clocks differ across ranks: rank 0's wall-clock decisions count, shared at
                # steps every rank knows (so a budget may run over by SAMPLE_EVERY steps).
                over, late = agree([state.elapsed >= budget, not cfg.eval_every
                                    and state.elapsed - last_eval >= cfg.eval_seconds], d, device)
                done, due = done or over, due or late
            if not (due or done):
                continue
            # Evaluation, logging and checkpoints: rank 0 only, the others wait in agree().
            last_eval = state.elapsed
            if d.main:
                t_eval = time.perf_counter()
                val = evaluate(reader, data.val_images, data.val_labels).metrics
                improved = val["sequence_accuracy"] > state.best
                state.best = max(state.best, val["sequence_accuracy"])
                state.evals_without_gain = 0 if improved else state.evals_without_gain + 1
                row = {"epoch": round(state.step / spe, 3), "step": state.step,
                       "elapsed_s": round(state.elapsed, 2),
                       "lr": optimizer.param_groups[0]["lr"], **window.summary(),
                       "val_sequence_accuracy": val["sequence_accuracy"],
                       "val_char_accuracy": val["char_accuracy"], "val_ned": val["ned"]}
                log.write(row)
                metrics = {**row, "val": val, **asdict(state)}
                if improved:
                    save_checkpoint(out / "best.ckpt", model, config, metrics,
                                    train_config=_jsonable(cfg),
                                    train_hashes=data.train_hashes)
                state.eval_seconds += time.perf_counter() - t_eval
                save_checkpoint(
                    out / "last.ckpt", model, config, metrics, train_config=_jsonable(cfg),
                    train_hashes=data.train_hashes,
                    optimizer=optimizer.state_dict(), scaler=scaler.state_dict(),
                    rng={"torch": torch.get_rng_state(), "augment": aug_gen.get_state()},
                    trainer=asdict(state))
                if bar is not None:
                    bar.write(f"step {state.step} ({row['epoch']:.2f} ep, "
                              f"{state.elapsed:.0f} s): val acc "
                              f"{val['sequence_accuracy']:.4f}, char "
                              f"{val['char_accuracy']:.4f}, best {state.best:.4f}")
            early = cfg.patience is not None and state.evals_without_gain >= cfg.patience
            (stop,) = agree([done or early], d, device)
            window = _Window(device)
            if stop:
                break
    data.train.close()
    if bar is not None:
        bar.close()
    precision = str(amp_dtype if amp else torch.float32).removeprefix("torch.")
    return _finish(out, config, state, d, device, precision) if d.main else {}


def _timed(batches: Iterable, state: State) -> Iterator:
    """``batches``, adding the time spent waiting for each one to ``state.data_wait``."""
    it = iter(batches)
    while True:
        t = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            return
        state.data_wait += time.perf_counter() - t
        yield batch


# Steps between reads of the training batch's accuracy (a greedy decode and a host sync).
SAMPLE_EVERY = 25


class _Window:
    """Training loss, accuracy and speed since the last evaluation.

    The loss sum stays on the device (read once per summary); the accuracy is that of the
    batches sampled every SAMPLE_EVERY steps (0 until one is).
    """

    def __init__(self, device: torch.device) -> None:
        self.loss = torch.zeros((), device=device)
        self.correct, self.sampled, self.seen, self.t0 = 0, 0, 0, time.perf_counter()

    def add(self, loss: Tensor, n: int) -> None:
        self.loss += loss.float() * n
        self.seen += n

    def add_sample(self, correct: int, n: int) -> None:
        self.correct += correct
        self.sampled += n

    def summary(self) -> dict:
        return {"train_loss": float(self.loss) / max(1, self.seen),
                "train_accuracy": self.correct / max(1, self.sampled),
                "images_per_s": self.seen / max(1e-9, time.perf_counter() - self.t0)}

    def postfix(self) -> dict:
        s = self.summary()
        return {"loss": f"{s['train_loss']:.3f}", "acc": f"{s['train_accuracy']:.3f}",
                "img_s": f"{s['images_per_s']:.0f}"}


def _finish(out: Path, config: ModelConfig, state: State, d: Dist, device: torch.device,
            precision: str) -> dict:
    compute = max(1e-9, state.elapsed - state.eval_seconds)
    summary = {
        "model": config.name, "size": config.size, "charset": config.charset,
        "input": [config.height, config.width], "device": device.type, "world_size": d.world,
        "autocast": precision,  # the convolutions' precision (the LSTM stays float32)
        "steps": state.step, "train_seconds": state.elapsed, "images_seen": state.images,
        "images_per_s": state.images / compute,
        # Time the accelerator (or CPU) sat waiting for data: near 0 means compute-bound.
        "data_wait_fraction": state.data_wait / compute,
        "best_val_sequence_accuracy": state.best, "first_correct_s": state.first_correct_s,
        "parameters": sum(p.numel() for p in create_model(config).parameters()),
    }
    write_json(out / "summary.json", summary)
    if state.first_correct_s is None:
        print("crnn: warning: no training batch was ever read correctly: the model never "
              "left the blank plateau: give it more images (--images, --epochs)",
              file=sys.stderr)
    try:
        plot_curve(out / "metrics.csv", out / "curve.png")
    except Exception as e:  # a plot is a nicety; never lose a finished run over it
        print(f"crnn: no training curve ({e})")
    return summary


def _jsonable(cfg: TrainConfig) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


class _Log:
    """metrics.csv, one row per evaluation, appended so a resumed run continues it."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path, self.enabled = path, enabled

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        new = not self.path.exists()
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def _bar(cfg: TrainConfig, d: Dist, total: int | None, state: State):
    """The training bar (rank 0, on a terminal): over the planned steps when they are known,
    else over the --minutes budget in seconds; either way with a total and an ETA."""
    if not (cfg.progress and d.main):
        return None
    from crnn.progress import progress_bar

    if total is not None or cfg.minutes is None:
        return progress_bar(total, "training", "step", initial=state.step)
    return _ClockBar(cfg.minutes * 60, state.elapsed)


class _ClockBar:
    """A bar over a time budget: each ``update()`` moves it to the seconds spent so far."""

    def __init__(self, budget_s: float, elapsed: float) -> None:
        from crnn.progress import progress_bar

        self.t0 = time.perf_counter() - elapsed
        self.bar = progress_bar(round(budget_s), "training", "s", initial=round(elapsed),
                                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n}/{total} s "
                                           "[{remaining} left{postfix}]")
        self.steps = 0

    def update(self, steps: int = 1) -> None:
        self.steps += steps
        now = min(self.bar.total, round(time.perf_counter() - self.t0))
        self.bar.update(now - self.bar.n)

    def set_postfix(self, postfix: dict, refresh: bool = True) -> None:
        self.bar.set_postfix({"steps": self.steps, **postfix}, refresh=refresh)

    def write(self, text: str) -> None:
        self.bar.write(text)

    def close(self) -> None:
        self.bar.close()


def plot_curve(metrics_csv: Path, png: Path) -> None:
    """Validation accuracy and training loss against training time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.read_csv(metrics_csv)
    fig, ax = plt.subplots(figsize=(7, 4))
    minutes = df["elapsed_s"] / 60
    ax.plot(minutes, df["val_sequence_accuracy"], marker="o", label="val sequence accuracy")
    ax.plot(minutes, df["val_char_accuracy"], marker=".", label="val char accuracy")
    ax.set_xlabel("training time (min)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(minutes, df["train_loss"], color="grey", ls="--", label="train loss")
    ax2.set_yscale("log")
    ax2.set_ylabel("train loss")
    fig.legend(loc="lower center", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    tmp = png.with_name(f".{png.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, png)


