"""Benchmark suites: small declarative TOML files shipped in the package (``crnn/bench/suites/``).

A suite names the datasets to generate, the models to train with one shared budget, and
how to measure decoding and throughput. ``--suite quick`` reads the packaged
``quick.toml`` through ``importlib.resources`` (so it works from any folder, installed from a
wheel or not); ``--suite path/to/mine.toml`` reads that file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from captchagen.charsets import parse_charset
from captchagen.spec import NOISE_PRESETS, parse_length
from crnn.models.config import MODEL_NAMES, SIZES
from plumbing.config import check_fields, knob
from plumbing.errors import UsageError


def _k(default, lo=None, hi=None, choices=None, help: str = "suite value"):
    """A suite value: checked for type and range, named ``table.key`` when wrong."""
    return knob(default, help, lo=lo, hi=hi, choices=choices, cli=False)


def _items(obj, name: str, kind: type, lo: int | None = None, hi: int | None = None) -> None:
    """Check each item of the tuple field ``name``."""
    for v in getattr(obj, name):
        bad_type = not isinstance(v, kind) or (kind is int and isinstance(v, bool))
        if bad_type or (lo is not None and v < lo) or (hi is not None and v > hi):
            span = f" within {lo}..{hi}" if lo is not None else ""
            raise UsageError(f"{name} must hold {kind.__name__} values{span}, got {v!r}")


@dataclass(frozen=True)
class DataPlan:
    charset: str = _k("alnum")
    width: int = _k(160, 16, 2048)
    height: int = _k(60, 16, 1024)
    noise: str = _k("default", choices=tuple(NOISE_PRESETS))
    train_len: str = _k("4-6")
    train: int = _k(20_000, 1, 10_000_000)  # training images (pre-rendered once, cached)
    val: int = _k(500, 1, 1_000_000)
    test: int = _k(1_000, 1, 10_000_000)  # in-distribution test set, lengths train_len
    fixed_len: int = _k(5, 1, 64)  # a test set of this one length
    # test sets of lengths never seen in training
    unseen_lens: tuple[int, ...] = _k((3, 7))
    unseen_n: int = _k(500, 1, 10_000_000)

    def __post_init__(self) -> None:
        check_fields(self)
        _items(self, "unseen_lens", int, 1, 64)
        for name, parse in (("charset", parse_charset), ("train_len", parse_length)):
            try:
                parse(getattr(self, name))
            except UsageError as e:
                raise UsageError(f"{name}: {e}") from None


@dataclass(frozen=True)
class TrainPlan:
    # The same budget for every model, in training images so that any machine reaches the
    # same accuracies (only sooner or later); minutes, if given, is a wall-clock cap on top.
    images: int | None = _k(None, 1, 10**10)
    minutes: float | None = _k(None, 0.001, 60 * 24 * 30)
    epochs: int | None = _k(None, 1, 100_000)  # instead of (or as well as) images
    # validate every this many training images (with images)
    eval_images: int | None = _k(None, 1, 10**10)
    seeds: int = _k(1, 1, 100)  # train every model with this many seeds (seed, seed + 1, ...)
    batch_size: int = _k(64, 1, 65536)
    lr: float = _k(3e-3, 1e-9, 10.0)
    height: int = _k(32, 16, 256)
    width: int = _k(128, 16, 2048)
    schedule: str = _k("onecycle", choices=("onecycle", "cosine", "constant"))
    warmup: float = _k(0.1, 0.0, 1.0)
    eval_seconds: float = _k(30.0, 0.1, 7 * 86400)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class ModelPlan:
    name: str = _k(dataclasses.MISSING, choices=MODEL_NAMES)
    size: str = _k("small", choices=tuple(SIZES))
    label: str = _k("")  # the name in tables; default "name-size"
    minutes: float | None = _k(None, 0.001, 60 * 24 * 30)  # instead of [train]'s cap
    images: int | None = _k(None, 1, 10**10)  # instead of [train]'s budget
    seeds: int | None = _k(None, 1, 100)  # this model's own number of seeds

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def title(self) -> str:
        return self.label or f"{self.name}-{self.size}"

    def named_in(self, names: Sequence[str]) -> bool:
        """Whether ``names`` picks this model, by its name (``crnn``) or its title."""
        return self.name in names or self.title in names


@dataclass(frozen=True)
class DecodePlan:
    rows: int = _k(2048, 1, 10_000_000)
    batch_sizes: tuple[int, ...] = _k((1, 32, 256, 2048))
    beam_width: int = _k(10, 1, 1024)
    min_seconds: float = _k(0.2, 0.001, 3600.0)  # per contender and round
    repeats: int = _k(5, 1, 1000)  # rounds: a speed is their median, its range their spread

    def __post_init__(self) -> None:
        check_fields(self)
        _items(self, "batch_sizes", int, 1, 10_000_000)


@dataclass(frozen=True)
class ThroughputPlan:
    batch_sizes: tuple[int, ...] = _k((1, 32, 256))
    warmup: int = _k(20, 0, 100_000)
    repeats: int = _k(50, 1, 1_000_000)
    threads: int = _k(2, 1, 1024)  # torch CPU threads while timing
    min_seconds: float = _k(1.0, 0.0, 3600)  # each row's timed calls last at least this long

    def __post_init__(self) -> None:
        check_fields(self)
        _items(self, "batch_sizes", int, 1, 65536)


@dataclass(frozen=True)
class RealPlan:
    # names or titles of the models to train on it (all if empty)
    models: tuple[str, ...] = _k(())
    val_split: float = _k(0.1, 0.001, 0.999)
    images: int | None = _k(None, 1, 10**10)  # training images; minutes: a wall-clock cap
    minutes: float | None = _k(None, 0.001, 60 * 24 * 30)
    epochs: int | None = _k(None, 1, 100_000)
    augment: str = _k("on", choices=("auto", "on", "off"))
    width: int = _k(128, 16, 2048)

    def __post_init__(self) -> None:
        check_fields(self)
        _items(self, "models", str)


@dataclass(frozen=True)
class DdddocrPlan:
    n: int = _k(200, 1, 1_000_000)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class TransferPlan:
    """``[transfer]`` (with --real): accuracy on the real set against K real labels, from
    scratch and after synthetic pretraining (see ``crnn.bench.transfer``)."""

    ks: tuple[int | str, ...] = _k((0, 50, 100, 200, "all"))  # "all": the whole training part
    split: float = _k(0.1, 0.001, 0.999)  # the real set's held-out part (seed 42)
    style: str = _k("random")  # captchagen --style of the synthetic pretraining data
    model: str = _k("crnn", choices=MODEL_NAMES)
    size: str = _k("small", choices=tuple(SIZES))
    height: int = _k(32, 16, 256)
    width: int = _k(128, 16, 2048)
    pretrain_images: int = _k(40_000, 1, 10**9)
    pretrain_epochs: int = _k(3, 1, 100_000)
    pretrain_batch_size: int = _k(64, 1, 65536)
    finetune_steps: int = _k(1_000, 1, 10**8)  # the same budget for both arms at every K
    batch_size: int = _k(32, 1, 65536)
    lr: float = _k(3e-3, 1e-9, 10.0)
    augment: str = _k("on", choices=("auto", "on", "off"))
    # > 1: K = "all" is also measured on that many disjoint held-out parts of the split's size
    # (fold 0 = the split), pooled: every real image held out once, not one small test part.
    folds: int = _k(1, 1, 1000)

    def __post_init__(self) -> None:
        check_fields(self)
        bad = [k for k in self.ks if k != "all" and not (
            isinstance(k, int) and not isinstance(k, bool) and 0 <= k <= 10**7)]
        if bad or not self.ks:
            raise UsageError(f"ks must list whole numbers >= 0 or \"all\", got {list(self.ks)}")
        if self.folds > 1 and "all" not in self.ks:
            raise UsageError(f"[transfer] folds = {self.folds} measures K = \"all\": "
                             "add \"all\" to ks or set folds = 1")


@dataclass(frozen=True)
class Suite:
    name: str = _k(dataclasses.MISSING)
    description: str = _k("")
    seed: int = knob(0, "suite seed", lo=0, hi=2**31 - 1, cli=False)
    data: DataPlan = field(default_factory=DataPlan)
    train: TrainPlan = field(default_factory=TrainPlan)
    models: tuple[ModelPlan, ...] = ()
    decode: DecodePlan = field(default_factory=DecodePlan)
    throughput: ThroughputPlan = field(default_factory=ThroughputPlan)
    real: RealPlan = field(default_factory=RealPlan)
    ddddocr_n: int = knob(200, "ddddocr images", lo=1, hi=1_000_000, cli=False)
    transfer: TransferPlan | None = None  # [transfer], measured with --real
    source: str = _k("")  # the file it was read from

    def __post_init__(self) -> None:
        check_fields(self)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def config_hash(obj) -> str:
    """A short, stable hash of a JSON-able config: the cache key of a benchmark step."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def packaged_suites() -> dict[str, Traversable]:
    """The suites shipped with the package, by name (package data, not the source tree)."""
    folder = resources.files("crnn.bench") / "suites"
    return {f.name.removesuffix(".toml"): f for f in folder.iterdir()
            if f.name.endswith(".toml") and f.is_file()}


def find_suite(name: str) -> Path | Traversable:
    """A path to a ``.toml`` file as given, else the packaged suite of that name."""
    p = Path(name)
    if p.suffix == ".toml":
        if p.is_file():
            return p
        raise UsageError(f"suite file {p} does not exist")
    known = packaged_suites()
    if name in known:
        return known[name]
    raise UsageError(f"unknown suite {name!r}; known: {', '.join(sorted(known)) or 'none'} "
                     "(or give a path to a .toml file)")


# The tables of a suite file and the plans they fill; top-level scalars are listed apart.
TABLES = {"data": DataPlan, "train": TrainPlan, "decode": DecodePlan,
          "throughput": ThroughputPlan, "real": RealPlan, "ddddocr": DdddocrPlan}
SCALARS = ("name", "description", "seed")


def load_suite(name: str) -> Suite:
    """Read and check a suite: unknown tables and keys, wrong types and out-of-range values
    are refused, naming ``table.key``, before anything runs."""
    path = find_suite(name)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"suite {path} is not valid TOML: {e}") from None
    unknown = sorted(set(raw) - set(TABLES) - set(SCALARS) - {"models", "transfer"})
    if unknown:
        raise UsageError(f"suite {path}: unknown table or key {', '.join(unknown)}; known: "
                         f"{', '.join([*SCALARS, 'models', *TABLES])}")
    plans = {key: _plan(cls, raw.get(key, {}), key, path) for key, cls in TABLES.items()}
    models = raw.get("models", [])
    if not isinstance(models, list):
        raise UsageError(f"suite {path}: models must be a list of [[models]] tables")
    return _plan(Suite, {
        "name": raw.get("name", path.name.removesuffix(".toml")),
        "description": raw.get("description", ""),
        "seed": raw.get("seed", 0), "data": plans["data"], "train": plans["train"],
        "models": tuple(_plan(ModelPlan, m, f"models[{i}]", path) for i, m in enumerate(models)),
        "decode": plans["decode"], "throughput": plans["throughput"], "real": plans["real"],
        "ddddocr_n": plans["ddddocr"].n, "source": str(path),
        "transfer": _plan(TransferPlan, raw["transfer"], "transfer", path)
        if "transfer" in raw else None}, "", path)


def select_models(suite: Suite, wanted: list[str]) -> Suite:
    """The suite restricted to the models named (by name, like ``crnn``, or title)."""
    unknown = [w for w in wanted if not any(m.named_in([w]) for m in suite.models)]
    if unknown or not wanted:
        raise UsageError(f"--models: unknown model(s) {', '.join(unknown) or '(none given)'}; "
                         f"suite {suite.name} has: {', '.join(m.title for m in suite.models)}")
    return dataclasses.replace(suite, models=tuple(m for m in suite.models if m.named_in(wanted)))


def _plan(cls, table, key: str, path: Path):
    """``cls`` filled from the TOML table ``key``, every value checked."""
    where = f"{key}." if key else ""
    if not isinstance(table, dict):
        raise UsageError(f"suite {path}: {key} must be a table, got {table!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - names)
    if unknown:
        raise UsageError(f"suite {path}: unknown key {', '.join(where + u for u in unknown)}")
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in table
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise UsageError(f"suite {path}: {where}{missing[0]} must be set")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    try:
        return cls(**values)
    except UsageError as e:
        raise UsageError(f"suite {path}: {where}{e}") from None
