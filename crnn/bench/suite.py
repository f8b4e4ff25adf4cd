"""Benchmark suites: small declarative TOML files under ``benchmarks/suites/``.

A suite names the datasets to generate, the models to train with one shared budget, and
how to measure decoding and throughput. ``--suite quick`` finds
``benchmarks/suites/quick.toml``; ``--suite path/to/mine.toml`` reads that file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from plumbing.errors import UsageError

SUITE_DIRS = (Path.cwd() / "benchmarks" / "suites",
              Path(__file__).resolve().parents[2] / "benchmarks" / "suites")


@dataclass(frozen=True)
class DataPlan:
    charset: str = "alnum"
    width: int = 160
    height: int = 60
    noise: str = "default"
    train_len: str = "4-6"
    train: int = 20_000  # training images (pre-rendered once, cached)
    val: int = 500
    test: int = 1_000  # in-distribution test set, lengths train_len
    fixed_len: int = 5  # a test set of this one length
    unseen_lens: tuple[int, ...] = (3, 7)  # test sets of lengths never seen in training
    unseen_n: int = 500


@dataclass(frozen=True)
class TrainPlan:
    minutes: float = 2.0  # the same budget for every model
    epochs: int | None = None  # instead of (or as well as) minutes
    batch_size: int = 64
    lr: float = 3e-3
    height: int = 32
    width: int = 128
    schedule: str = "onecycle"
    warmup: float = 0.1
    eval_seconds: float = 30.0


@dataclass(frozen=True)
class ModelPlan:
    name: str
    size: str = "small"
    label: str = ""  # the name in tables; default "name-size"
    minutes: float | None = None  # this model's own budget, instead of [train]'s

    @property
    def title(self) -> str:
        return self.label or f"{self.name}-{self.size}"

    def named_in(self, names: Sequence[str]) -> bool:
        """Whether ``names`` picks this model, by its name (``crnn``) or its title."""
        return self.name in names or self.title in names


@dataclass(frozen=True)
class DecodePlan:
    rows: int = 2048
    batch_sizes: tuple[int, ...] = (1, 32, 256, 2048)
    beam_width: int = 10
    min_seconds: float = 0.5


@dataclass(frozen=True)
class ThroughputPlan:
    batch_sizes: tuple[int, ...] = (1, 32, 256)
    warmup: int = 20
    repeats: int = 50
    threads: int = 2  # torch CPU threads while timing


@dataclass(frozen=True)
class RealPlan:
    models: tuple[str, ...] = ()  # names or titles of the models to train on it (all if empty)
    val_split: float = 0.1
    minutes: float = 2.0
    epochs: int | None = None
    augment: str = "on"
    width: int = 128


@dataclass(frozen=True)
class TransferPlan:
    """``[transfer]`` (with --real): accuracy on the real set against K real labels, from
    scratch and after synthetic pretraining (see ``crnn.bench.transfer``)."""

    ks: tuple[int | str, ...] = (0, 50, 100, 200, "all")  # "all": the whole training part
    split: float = 0.1  # the real set's held-out part (seed 42), never trained on
    style: str = "random"  # captchagen --style of the synthetic pretraining data
    model: str = "crnn"
    size: str = "small"
    height: int = 32
    width: int = 128
    pretrain_images: int = 40_000
    pretrain_epochs: int = 3
    pretrain_batch_size: int = 64
    finetune_steps: int = 1_000  # the same budget for both arms at every K
    batch_size: int = 32
    lr: float = 3e-3
    augment: str = "on"


@dataclass(frozen=True)
class Suite:
    name: str
    description: str = ""
    seed: int = 0
    data: DataPlan = field(default_factory=DataPlan)
    train: TrainPlan = field(default_factory=TrainPlan)
    models: tuple[ModelPlan, ...] = ()
    decode: DecodePlan = field(default_factory=DecodePlan)
    throughput: ThroughputPlan = field(default_factory=ThroughputPlan)
    real: RealPlan = field(default_factory=RealPlan)
    ddddocr_n: int = 200
    transfer: TransferPlan | None = None
    source: str = ""  # the file it was read from

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def config_hash(obj) -> str:
    """A short, stable hash of a JSON-able config: the cache key of a benchmark step."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def find_suite(name: str) -> Path:
    p = Path(name)
    if p.suffix == ".toml" and p.is_file():
        return p
    for d in SUITE_DIRS:
        if (d / f"{name}.toml").is_file():
            return d / f"{name}.toml"
    known = sorted({f.stem for d in SUITE_DIRS if d.is_dir() for f in d.glob("*.toml")})
    raise UsageError(f"unknown suite {name!r}; known: {', '.join(known) or 'none'} "
                     "(or give a path to a .toml file)")


def load_suite(name: str) -> Suite:
    path = find_suite(name)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"suite {path} is not valid TOML: {e}") from None
    try:
        return Suite(
            name=raw.get("name", path.stem),
            description=raw.get("description", ""),
            seed=raw.get("seed", 0),
            data=_plan(DataPlan, raw.get("data", {})),
            train=_plan(TrainPlan, raw.get("train", {})),
            models=tuple(_plan(ModelPlan, m) for m in raw.get("models", [])),
            decode=_plan(DecodePlan, raw.get("decode", {})),
            throughput=_plan(ThroughputPlan, raw.get("throughput", {})),
            real=_plan(RealPlan, raw.get("real", {})),
            ddddocr_n=raw.get("ddddocr", {}).get("n", 200),
            transfer=_plan(TransferPlan, raw["transfer"]) if "transfer" in raw else None,
            source=str(path),
        )
    except TypeError as e:
        raise UsageError(f"suite {path}: {e}") from None


def select_models(suite: Suite, wanted: list[str]) -> Suite:
    """The suite restricted to the models named (by name, like ``crnn``, or title)."""
    unknown = [w for w in wanted if not any(m.named_in([w]) for m in suite.models)]
    if unknown or not wanted:
        raise UsageError(f"--models: unknown model(s) {', '.join(unknown) or '(none given)'}; "
                         f"suite {suite.name} has: {', '.join(m.title for m in suite.models)}")
    return dataclasses.replace(suite, models=tuple(m for m in suite.models if m.named_in(wanted)))


def _plan(cls, table: dict):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(table) - names
    if unknown:
        raise UsageError(f"unknown keys in [{cls.__name__}]: {', '.join(sorted(unknown))}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    return cls(**values)
