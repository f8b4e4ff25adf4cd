"""Training: one direct loop, in the spirit of nanoGPT's ``train.py``.

Data -> model -> AdamW with a warm-up schedule -> CTC (or per-head) loss -> clip -> step,
with a validation pass, best/last checkpoints and a CSV log at every evaluation. Runs on
one device or under ``torchrun`` (DistributedDataParallel).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crnn import decode, finetune
from crnn.checkpoint import read_checkpoint, save_checkpoint
from crnn.data.augment import augment
from crnn.data.batches import EpochBatches, GeneratedBatches, LazyImages
from crnn.data.images import decode_images, fits_in_memory, normalize
from crnn.data.sources import Samples, load_samples, split
from crnn.distributed import Dist, agree, barrier, init_distributed, shutdown
from crnn.evaluate import evaluate
from crnn.inference import Reader, pick_device
from crnn.labels import charset_from_labels, check_labels, decode_fixed, encode_ctc, encode_fixed
from crnn.models import ModelConfig, create_model
from crnn.models.trunk import frames_for_width
from crnn.schedule import lr_factor
from plumbing.errors import UsageError
from plumbing.files import write_json

# Settings a resumed run may change; everything else must match the run it continues.
RESUMABLE_CHANGES = {"epochs", "minutes", "patience", "progress", "workers", "threads", "resume",
                     "device", "overwrite"}


@dataclass(frozen=True)
class TrainConfig:
    data: str  # captchagen dataset or folder of images named by label
    out: str  # run directory
    model: str = "crnn"
    size: str = "small"
    height: int = 32
    width: int = 128
    max_len: int | None = None  # cnn-fixed heads; default: the longest label
    val: str | None = None  # a separate validation set (else --val-split of the data)
    val_split: float = 0.1
    generate: bool = False  # fresh images every step from the data's captchagen spec
    epoch_size: int = 20_000  # images per nominal epoch of generated data
    epochs: int | None = None
    minutes: float | None = None  # wall-clock budget of the training loop
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.01
    schedule: str = "onecycle"  # onecycle | cosine | constant
    warmup: float = 0.1  # fraction of the run
    grad_clip: float = 5.0
    patience: int | None = None  # early stopping after this many evaluations without gain
    eval_every: int | None = None  # steps; default: every epoch, and on a budget every
    eval_seconds: float = 60.0  # ... this many seconds of training
    augment: str = "auto"  # auto (on for folders of real images) | on | off
    device: str = "auto"
    amp: str = "auto"  # auto (on for CUDA) | on | off
    channels_last: str = "auto"  # auto (on) | on | off
    seed: int = 0
    workers: int | None = None  # data processes (decoding, generation)
    threads: int | None = None  # torch CPU threads
    skip_bad: bool = False
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    # h11 (plain fields until TrainConfig's knob() conversion is merged):
    init: str | None = None  # fine-tune: start from this checkpoint's weights (a new run)
    freeze_trunk: int = 0  # with init: steps during which the conv trunk stays frozen

    def __post_init__(self) -> None:
        if self.epochs is not None and self.epochs < 1:
            raise UsageError(f"--epochs must be >= 1, got {self.epochs}")
        if self.minutes is not None and self.minutes <= 0:
            raise UsageError(f"--minutes must be > 0, got {self.minutes}")
        if self.batch_size < 1 or self.lr <= 0:
            raise UsageError("--batch-size and --lr must be positive")
        if self.schedule not in ("onecycle", "cosine", "constant"):
            raise UsageError(f"unknown --schedule {self.schedule!r}")
        for name in ("augment", "amp", "channels_last"):
            if getattr(self, name) not in ("auto", "on", "off"):
                raise UsageError(f"--{name.replace('_', '-')} must be auto, on or off")
        if self.resume and self.overwrite:
            raise UsageError("--resume and --overwrite exclude each other")
        if self.freeze_trunk < 0 or (self.freeze_trunk and not self.init):
            raise UsageError("--freeze-trunk takes a number of steps >= 0, with --init")

    @property
    def planned_epochs(self) -> int | None:
        return self.epochs if self.epochs is not None or self.minutes is not None else 10


@dataclass
class Data:
    train: EpochBatches | GeneratedBatches
    val_images: Tensor
    val_labels: list[str]
    charset: str
    max_len: int
    origin: str


def prepare_data(cfg: TrainConfig, d: Dist) -> Data:
    """Read, check and decode the data; validation images are cached once."""
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
    return Data(train, val_images, val_labels, charset, longest, samples.origin)


def _decode(samples: Samples, cfg: TrainConfig) -> tuple[Tensor, list[str]]:
    images, bad = decode_images(samples.paths, cfg.height, cfg.width, cfg.workers, cfg.skip_bad)
    if bad:
        print(f"crnn: skipped {len(bad)} unreadable images")
    skip = set(bad)
    return images, [s for i, s in enumerate(samples.labels) if i not in skip]


def check_capacity(config: ModelConfig, longest: int) -> None:
    """Refuse a model that cannot emit the longest label."""
    if config.is_ctc:
        frames, need = frames_for_width(config.width), 2 * longest + 1
        if frames < need:
            raise UsageError(
                f"{config.name} at input width {config.width} has {frames} output frames, but "
                f"labels of {longest} characters need at least {need} (2 x {longest} + 1): "
                f"use --width {4 * need} or more")
    elif config.max_len < longest:
        raise UsageError(f"cnn-fixed with {config.max_len} heads cannot read labels of "
                         f"{longest} characters: use --max-len {longest}")


def loss_fn(out: Tensor, texts: list[str], config: ModelConfig) -> Tensor:
    if config.is_ctc:
        targets, lengths = encode_ctc(texts, config.charset)
        frames = torch.full((out.shape[1],), out.shape[0], dtype=torch.long)
        return F.ctc_loss(out.float(), targets.to(out.device), frames, lengths, blank=0,
                          reduction="mean", zero_infinity=True)
    targets = encode_fixed(texts, config.charset, config.max_len).to(out.device)
    return F.nll_loss(out.float().reshape(-1, out.shape[-1]), targets.reshape(-1))


def batch_texts(out: Tensor, config: ModelConfig) -> list[str]:
    if config.is_ctc:
        return decode.greedy(out.detach().float(), config.charset)
    return decode_fixed(out.detach(), config.charset)[0]


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
        resume = check_run_dir(cfg, out)
        torch.manual_seed(cfg.seed)
        data = prepare_data(cfg, d)
        config = ModelConfig(name=cfg.model, charset=data.charset, size=cfg.size,
                             height=cfg.height, width=cfg.width,
                             max_len=cfg.max_len or data.max_len)
        check_capacity(config, data.max_len)
        init = finetune.check_init(cfg.init, config) if cfg.init else None
        if resume is not None and resume["model_config"] != config.to_dict():
            raise UsageError(f"cannot resume {out}: its checkpoint is for another model or "
                             f"charset ({resume['model_config']['name']}, "
                             f"{resume['model_config']['charset']!r})")
        if d.main:
            start_run_dir(out, resume)
            write_json(out / "config.json", {"train": _jsonable(cfg), "model": config.to_dict(),
                                             "world_size": d.world, "init": init})
        barrier(d)
        summary = _fit(cfg, d, device, out, data, config, resume)
        if summary and init:
            summary["init"] = init
            write_json(out / "summary.json", summary)
        return summary
    finally:
        shutdown(d)


def check_run_dir(cfg: TrainConfig, out: Path) -> dict | None:
    """Refuse to clobber a run; with ``--resume`` return the last checkpoint's state."""
    last = out / "last.ckpt"
    if cfg.resume:
        if not last.is_file():
            raise UsageError(f"nothing to resume: {last} does not exist")
        state = read_checkpoint(last)
        old = state.get("train_config", {})
        differs = [k for k, v in asdict(cfg).items()
                   if k not in RESUMABLE_CHANGES and k in old and old[k] != v]
        if differs:
            raise UsageError(f"cannot resume {out}: it ran with other settings "
                             f"({', '.join(differs)} differ)")
        return state
    if out.exists() and any(out.iterdir()) and not cfg.overwrite:
        raise UsageError(f"run directory {out} exists and is not empty: "
                         "add --resume to continue it or --overwrite to start again")
    return None


def start_run_dir(out: Path, resume: dict | None) -> None:
    """Make the run directory; on resume, drop log rows newer than the checkpoint (a kill
    can land between the two), so the log reads as if the run had never stopped."""
    out.mkdir(parents=True, exist_ok=True)
    if resume is None:
        for name in ("best.ckpt", "last.ckpt", "metrics.csv", "curve.png", "summary.json",
                     "config.json"):
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
    first_correct_s: float | None = None  # time until a batch first held a correct reading


def _fit(cfg: TrainConfig, d: Dist, device: torch.device, out: Path, data: Data,
         config: ModelConfig, resume: dict | None) -> dict:
    cuda = device.type == "cuda"
    channels_last = cfg.channels_last != "off"
    amp = cfg.amp == "on" or (cfg.amp == "auto" and cuda)
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
    budget = cfg.minutes * 60 if cfg.minutes else None
    reader = Reader(model, config, device, amp=amp, channels_last=channels_last)
    log = _Log(out / "metrics.csv", d.main)
    bar = _bar(cfg, d, total_steps, state.step)

    def progress() -> float:
        return max([state.step / total_steps] if total_steps else []
                   + ([state.elapsed / budget] if budget else []))

    window = _Window()
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
            loss = loss_fn(outputs, texts, config)
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
            correct = sum(p == t for p, t in zip(batch_texts(outputs, config), texts))
            if correct and state.first_correct_s is None:
                state.first_correct_s = state.elapsed
            window.add(loss.item(), correct, len(texts) * d.world)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(window.postfix(), refresh=False)

            done = (total_steps is not None and state.step >= total_steps) or (
                budget is not None and state.elapsed >= budget)
            due = (state.step % cfg.eval_every == 0) if cfg.eval_every else (
                state.step % spe == 0
                or (budget is not None and state.elapsed - last_eval >= cfg.eval_seconds))
            done, due = agree([done, due], d, device)
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
                                    train_config=_jsonable(cfg))
                state.eval_seconds += time.perf_counter() - t_eval
                save_checkpoint(
                    out / "last.ckpt", model, config, metrics, train_config=_jsonable(cfg),
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
            window = _Window()
            if stop:
                break
    data.train.close()
    if bar is not None:
        bar.close()
    return _finish(out, config, state, d, device) if d.main else {}


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


class _Window:
    """Training loss, accuracy and speed since the last evaluation."""

    def __init__(self) -> None:
        self.loss, self.correct, self.seen, self.t0 = 0.0, 0, 0, time.perf_counter()

    def add(self, loss: float, correct: int, n: int) -> None:
        self.loss += loss * n
        self.correct += correct
        self.seen += n

    def summary(self) -> dict:
        seen = max(1, self.seen)
        return {"train_loss": self.loss / seen, "train_accuracy": self.correct / seen,
                "images_per_s": self.seen / max(1e-9, time.perf_counter() - self.t0)}

    def postfix(self) -> dict:
        s = self.summary()
        return {"loss": f"{s['train_loss']:.3f}", "acc": f"{s['train_accuracy']:.3f}",
                "img_s": f"{s['images_per_s']:.0f}"}


def _finish(out: Path, config: ModelConfig, state: State, d: Dist, device: torch.device
            ) -> dict:
    compute = max(1e-9, state.elapsed - state.eval_seconds)
    summary = {
        "model": config.name, "size": config.size, "charset": config.charset,
        "input": [config.height, config.width], "device": device.type, "world_size": d.world,
        "steps": state.step, "train_seconds": state.elapsed,
        "images_per_s": state.images / compute,
        # Time the accelerator (or CPU) sat waiting for data: near 0 means compute-bound.
        "data_wait_fraction": state.data_wait / compute,
        "best_val_sequence_accuracy": state.best, "first_correct_s": state.first_correct_s,
        "parameters": sum(p.numel() for p in create_model(config).parameters()),
    }
    write_json(out / "summary.json", summary)
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


def _bar(cfg: TrainConfig, d: Dist, total: int | None, initial: int):
    if not (cfg.progress and d.main):
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=False)


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


