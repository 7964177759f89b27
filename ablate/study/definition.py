"""A study: variants of a decoder, how to tune and repeat them, and the claims to test.

A study file is plain Python that defines ``study = Study(...)``; ``load_study``
runs it, applies a preset and validates every field at this boundary, so the
sweep never meets a malformed study. Nothing here imports torch.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ablate.errors import StudyError
from ablate.study.claim import Claim, ClaimError, validate_claim_against

__all__ = ["Claim", "Study", "Variant", "load_study", "PRESETS"]

PRESETS = ("smoke", "cpu", "paper")
# Study fields a preset may override; dict-valued ones are merged key by key.
PRESET_FIELDS = ("data", "image_size", "pretrained", "train", "search_space", "trials", "seeds", "latency",
                 "threads", "eval_split", "budgets", "keep_checkpoints")
MERGED_FIELDS = ("data", "train", "latency")
LATENCY_KEYS = ("rounds", "launches", "warmup", "threads", "dtype", "batches", "mode")
# A budget (training protocol) may change these; its runs are keyed "<variant>@<budget>".
BUDGET_KEYS = ("train", "image_size", "pretrained")
BUDGET_SEP = "@"


@dataclass
class Variant:
    """One rung of the ablation ladder: a registered decoder and its fixed settings.

    ``settings`` holds TrainConfig fields (``lr``...) and decoder keywords
    (``embed_dim``...); ``search_space`` adds to or replaces the study's shared one.
    """

    decoder: str
    settings: dict = field(default_factory=dict)
    search_space: dict | None = None
    pretrained: str | None = None  # this variant's encoder weights, when not the study's (e.g. ResNet34)
    encoder: str | None = None  # e.g. "mit_b2", "resnet50", "timm:convnext_tiny"; None: the study's


@dataclass(kw_only=True)
class Study:
    """Everything ``ablate run`` needs; see studies/progressive_decoder.py for an example."""

    name: str | None = None
    # kind: where the folder comes from (camvid|folder|synthetic, + its options); layout: how it is read
    # (a registered layout name; default: detected)
    data: dict = field(default_factory=lambda: {"kind": "camvid"})
    eval_split: str = "test"  # phase 2 split; val when the dataset has none
    image_size: tuple[int, int] | None = None
    pretrained: str | None = "nvidia/mit-b0"  # None = random init (recorded with every result)
    encoder: str | None = None  # the variants' default encoder; None: each decoder's own (mit_b0; resnet34 for unet_r34)
    variants: dict[str, Variant] | None = None
    baseline: str | None = None
    train: dict = field(default_factory=dict)  # TrainConfig fields shared by every variant
    search_space: dict = field(default_factory=dict)  # name -> optuna distribution
    trials: int = 0  # tuning budget per variant (finished trials); 0 = fixed settings
    seeds: list[int] | None = None
    claims: list[Claim] = field(default_factory=list)
    latency: dict = field(default_factory=dict)  # rounds, warmup, threads, dtype, batches
    threads: int | None = None  # torch CPU threads for training; None = torch's choice
    # which runs keep their final weights (seeds, all, none) unless `ablate run --keep-checkpoints` says;
    # not part of the study's fingerprint: it changes what is kept, not what is measured
    keep_checkpoints: str = "seeds"
    presets: dict[str, dict] = field(default_factory=dict)
    # Training protocols to repeat every variant, seed and claim under, e.g. {"6ep": {"train": {"epochs": 6}},
    # "15ep": {"train": {"epochs": 15}}} (keys: train, image_size, pretrained). load_study expands them
    # into variants "<variant>@<budget>" and claims per budget; analysis.sections.budgets reads them back.
    budgets: dict[str, dict] = field(default_factory=dict)
    sampler_seed: int = 0
    preset: str | None = None  # filled by load_study
    path: str | None = None  # filled by load_study

    def space(self, variant: str) -> dict:
        """The Optuna search space of one variant (shared, then the variant's own)."""
        own = self.variants[variant].search_space
        return {**self.search_space, **(own or {})}

    def pretrained_for(self, variant: str) -> str:
        """Study ``pretrained=None`` means random init for every variant (smoke runs stay offline)."""
        if self.pretrained in (None, "none"):
            return "none"
        return self.variants[variant].pretrained or self.pretrained

    def encoder_for(self, variant: str) -> str:
        """The variant's encoder, else the study's, else its decoder's default (``ablate.models.decoder_encoder``)."""
        v = self.variants[variant]
        if v.encoder or self.encoder:
            return v.encoder or self.encoder
        from ablate.models import decoder_encoder

        return decoder_encoder(v.decoder)

    def tunes(self, variant: str) -> bool:
        return self.trials > 0 and bool(self.space(variant))

    def train_settings(self, variant: str, params: dict | None = None, *, seed: int) -> dict:
        """TrainConfig fields for one run: study, then variant, then tuned params.

        Keys that are not TrainConfig fields are decoder keywords (``decoder_cfg``).
        """
        fields_ = train_config_fields()
        merged = {**self.train, **self.variants[variant].settings, **(params or {})}
        cfg = {k: v for k, v in merged.items() if k in fields_ and k != "decoder_cfg"}
        decoder_cfg = {**merged.get("decoder_cfg", {}), **{k: v for k, v in merged.items() if k not in fields_}}
        size = self.variants[variant].settings.get("image_size", self.image_size)  # a budget may set its own
        if self.data.get("layout"):
            cfg["layout"] = self.data["layout"]
        cfg.update(
            decoder=self.variants[variant].decoder,
            encoder=self.encoder_for(variant),
            pretrained=self.pretrained_for(variant),
            image_size=tuple(size),
            seed=int(seed),
            decoder_cfg=decoder_cfg,
        )
        return cfg

    def latency_settings(self) -> dict:
        lat = {"rounds": 30, "warmup": 5, "threads": None, "dtype": "fp32", "batches": None, **self.latency}
        batch = int(self.train.get("batch_size", 4))
        lat["batches"] = sorted(set(lat["batches"] or [1, batch]))
        lat.setdefault("launches", 3)
        lat.setdefault("mode", "eager")
        # The one latency setting that speed claims are judged on (analysis never picks another):
        # the study's training batch at the study's image size, in the declared dtype and mode.
        height, width = self.image_size
        lat["claim_setting"] = {"batch": batch, "height": int(height), "width": int(width),
                                "dtype": lat["dtype"], "mode": lat["mode"]}
        return lat

    def plugin_paths(self) -> list[str]:
        """What a fresh process must run before building this study's models (its own decoders, encoders,
        layouts): the study file, by absolute path (``ablate.study.plugins.import_study_plugins``)."""
        return [str(Path(self.path).resolve())] if self.path else []

    def to_dict(self) -> dict:
        """JSON-safe resolved study (study.json)."""
        return {
            "name": self.name,
            "path": self.path,
            "imports": self.plugin_paths(),
            "preset": self.preset,
            "data": self.data,
            "eval_split": self.eval_split,
            "image_size": list(self.image_size),
            "pretrained": self.pretrained,
            "baseline": self.baseline,
            "variants": {
                name: {"decoder": v.decoder, "encoder": self.encoder_for(name), "settings": v.settings,
                       "search_space": sorted(self.space(name)), "pretrained": self.pretrained_for(name)}
                for name, v in self.variants.items()
            },
            "train": self.train,
            "search_space": {k: _distribution_json(d) for k, d in self.search_space.items()},
            "variant_search_spaces": {
                name: {k: _distribution_json(d) for k, d in (v.search_space or {}).items()}
                for name, v in self.variants.items()
            },
            "trials": self.trials,
            "seeds": list(self.seeds),
            "claims": [c.to_dict() for c in self.claims],
            "budgets": self.budgets,
            "latency": self.latency_settings(),
            "sampler_seed": self.sampler_seed,
            "threads": self.threads,
        }


def run_dir_name(study: Study) -> str:
    """``<name>`` for the study as written, ``<name>-<preset>`` under a preset, so a smoke run
    never collides with the real study's run directory."""
    return study.name if study.preset is None else f"{study.name}-{study.preset}"


def load_study(path, preset: str | None = None) -> Study:
    """Run a study file, apply ``preset`` and validate; any problem is one StudyError line."""
    from ablate.study.plugins import run_study_file

    path = Path(path)
    namespace = run_study_file(path)
    study = namespace.get("study")
    if not isinstance(study, Study):
        raise StudyError(f"{path}: study: expected a module-level `study = Study(...)`, found {type(study).__name__}")
    study = copy.deepcopy(study)
    study.path = str(path)
    if preset is not None:
        _apply_preset(study, preset, path)
    _validate(study, path)
    if study.budgets:
        _expand_budgets(study, path)
    from ablate.study.checks import check_variants_build

    check_variants_build(study, path, train_fields=train_config_fields())
    return study


def _expand_budgets(study: Study, path: Path) -> None:
    """Every variant and claim once per budget: variants ``<variant>@<budget>``, claims against
    ``<baseline>@<budget>``; the same seeds everywhere, so effects pair by seed across budgets too."""
    from ablate.engine.config import parse_size

    if not isinstance(study.budgets, dict) or not study.budgets:
        _fail(path, "budgets", "a dict name -> {train: {...}, image_size: ..., pretrained: ...}", study.budgets)
    fields_ = train_config_fields()
    variants: dict[str, Variant] = {}
    for budget, spec in study.budgets.items():
        where = f"budgets.{budget}"
        if not isinstance(budget, str) or not budget.replace("_", "").replace("-", "").isalnum():
            _fail(path, "budgets", "names of letters, digits, _ or -", budget)
        if not isinstance(spec, dict) or set(spec) - set(BUDGET_KEYS):
            _fail(path, where, f"a dict with keys among {', '.join(BUDGET_KEYS)}", spec)
        train = spec.get("train", {})
        unknown = sorted(set(train) - fields_) if isinstance(train, dict) else ["?"]
        if unknown:
            _fail(path, f"{where}.train", f"TrainConfig fields ({', '.join(sorted(fields_))})", train)
        settings = dict(train)
        if "image_size" in spec:
            try:
                settings["image_size"] = tuple(parse_size(spec["image_size"]))
            except Exception:
                _fail(path, f"{where}.image_size", "N or (H, W) or 'HxW'", spec["image_size"])
        for name, variant in study.variants.items():
            pretrained = variant.pretrained
            if "pretrained" in spec:  # None / "none": random init for this budget
                pretrained = "none" if spec["pretrained"] in (None, "none") else spec["pretrained"]
            variants[f"{name}{BUDGET_SEP}{budget}"] = Variant(
                variant.decoder, settings={**variant.settings, **settings}, search_space=variant.search_space,
                pretrained=pretrained, encoder=variant.encoder)
    claims = [Claim(f"{c.variant}{BUDGET_SEP}{b}", c.metric, band=tuple(c.band), relative=c.relative,
                    baseline=f"{c.baseline or study.baseline}{BUDGET_SEP}{b}")
              for b in study.budgets for c in study.claims]
    study.baseline = f"{study.baseline}{BUDGET_SEP}{next(iter(study.budgets))}"
    study.variants, study.claims = variants, claims


def _apply_preset(study: Study, preset: str, path: Path) -> None:
    if preset not in study.presets:
        known = ", ".join(sorted(study.presets)) or "none"
        raise StudyError(f"{path}: preset: unknown preset {preset!r}; this study defines: {known}")
    for key, value in study.presets[preset].items():
        if key not in PRESET_FIELDS:
            raise StudyError(f"{path}: presets.{preset}.{key}: expected one of {', '.join(PRESET_FIELDS)}")
        if key in MERGED_FIELDS:
            setattr(study, key, {**getattr(study, key), **value})
        else:
            setattr(study, key, copy.deepcopy(value))
    study.preset = preset


def _fail(path, field_: str, expected: str, got: Any = dataclasses.MISSING):
    tail = "" if got is dataclasses.MISSING else f", got {got!r}"
    raise StudyError(f"{path}: {field_}: expected {expected}{tail}")


def _validate(study: Study, path: Path) -> None:
    for name in ("name", "variants", "baseline", "seeds", "image_size"):
        if getattr(study, name) is None:
            _fail(path, name, "this field to be set (missing)")
    if not isinstance(study.name, str) or not study.name.replace("_", "").replace("-", "").isalnum():
        _fail(path, "name", "a name of letters, digits, _ or -", study.name)
    if study.keep_checkpoints not in ("seeds", "all", "none"):
        _fail(path, "keep_checkpoints", "'seeds', 'all' or 'none'", study.keep_checkpoints)
    _validate_data(study, path)
    _validate_variants(study, path)
    if study.baseline not in study.variants:
        _fail(path, "baseline", f"one of the variants ({', '.join(study.variants)})", study.baseline)
    try:
        from ablate.engine.config import parse_size

        study.image_size = parse_size(study.image_size)
    except Exception:
        _fail(path, "image_size", "N or (H, W) or 'HxW'", study.image_size)
    _validate_train(study, path)
    _validate_space(study.search_space, path, "search_space")
    if not isinstance(study.trials, int) or study.trials < 0:
        _fail(path, "trials", "a whole number >= 0 (trials per variant)", study.trials)
    seeds = study.seeds
    if not isinstance(seeds, (list, tuple)) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**32 for s in seeds):
        _fail(path, "seeds", "a non-empty list of whole numbers from 0 to 2**32-1", seeds)
    if len(set(seeds)) != len(seeds):
        _fail(path, "seeds", "distinct seeds", seeds)
    study.seeds = list(seeds)
    if study.threads is not None and (not isinstance(study.threads, int) or study.threads < 1):
        _fail(path, "threads", "None or a whole number >= 1", study.threads)
    _validate_claims(study, path)
    _validate_latency(study, path)


def _validate_data(study: Study, path: Path) -> None:
    from ablate.data.layouts import list_layouts
    from ablate.data.registry import list_datasets

    kinds = list_datasets()
    if not isinstance(study.data, dict) or study.data.get("kind") not in kinds:
        _fail(path, "data.kind", f"one of {', '.join(kinds)}", study.data)
    layout = study.data.get("layout")
    if layout is not None and layout not in list_layouts():  # the study file's own layouts registered by now
        _fail(path, "data.layout", f"a registered layout ({', '.join(list_layouts())})", layout)
    if study.eval_split not in ("test", "val"):
        _fail(path, "eval_split", "'test' or 'val'", study.eval_split)


def _validate_variants(study: Study, path: Path) -> None:
    if not isinstance(study.variants, dict) or not study.variants:
        _fail(path, "variants", "a non-empty dict name -> Variant(decoder, settings)", study.variants)
    known = _known_decoders()
    for name, variant in study.variants.items():
        where = f"variants.{name}"
        if not isinstance(variant, Variant):
            _fail(path, where, "Variant(decoder=..., settings={...})", variant)
        if known is not None and variant.decoder not in known:
            _fail(path, f"{where}.decoder", f"a registered decoder ({', '.join(known)})", variant.decoder)
        if not isinstance(variant.settings, dict):
            _fail(path, f"{where}.settings", "a dict of settings", variant.settings)
        if variant.search_space is not None:
            _validate_space(variant.search_space, path, f"{where}.search_space")


def _validate_train(study: Study, path: Path) -> None:
    fields_ = train_config_fields()
    if not isinstance(study.train, dict):
        _fail(path, "train", "a dict of TrainConfig fields", study.train)
    unknown = sorted(set(study.train) - fields_)
    if unknown:
        _fail(path, f"train.{unknown[0]}", f"a TrainConfig field ({', '.join(sorted(fields_))})")
    for key in ("decoder", "seed", "image_size", "pretrained"):
        if key in study.train:
            _fail(path, f"train.{key}", f"no {key} here: it is set by the study's own field")
    if "layout" in study.train:
        _fail(path, "train.layout", "no layout here: set data={'layout': ...}")


def _validate_space(space, path: Path, where: str) -> None:
    from optuna.distributions import BaseDistribution

    if not isinstance(space, dict):
        _fail(path, where, "a dict name -> optuna distribution", space)
    for key, dist in space.items():
        if not isinstance(dist, BaseDistribution):
            _fail(path, f"{where}.{key}", "an optuna distribution, e.g. FloatDistribution(1e-5, 1e-3, log=True)", dist)


def _validate_claims(study: Study, path: Path) -> None:
    """Every claim through the one validator (``ablate.study.claim``): band, variant, baseline, metric."""
    if not isinstance(study.claims, (list, tuple)):
        _fail(path, "claims", "a list of Claim(variant, metric, band=(lo, hi))", study.claims)
    metrics = claim_metrics(study)
    for i, claim in enumerate(study.claims):
        where = f"claims[{i}]"
        if not isinstance(claim, Claim):
            _fail(path, where, "Claim(variant, metric, band=(lo, hi))", claim)
        try:  # a Claim checked its band when it was made; this adds the study's variants and metrics
            validate_claim_against(claim, variants=list(study.variants), metrics=metrics)
        except ClaimError as exc:
            raise StudyError(f"{path}: {where}: {exc}") from None


def claim_metrics(study: Study, class_names=None) -> list[str]:
    """What a claim of this study may test: the metric table's metrics (``ablate.rundir.metrics``) and
    ``iou_<class>`` for the dataset's classes.

    Before the dataset is opened its classes are not known, and any ``iou_...`` passes;
    ``validate_claim_classes`` checks them against the dataset at run start, before any training."""
    from ablate.rundir import class_column
    from ablate.rundir.metrics import claimable_metrics

    return claimable_metrics(None if class_names is None else [class_column(c) for c in class_names])


def validate_claim_classes(study: Study, class_names) -> None:
    """Per-class claims (``iou_<class>``) against the dataset's own classes; a StudyError naming them."""
    metrics = claim_metrics(study, class_names)
    for i, claim in enumerate(study.claims):
        try:
            validate_claim_against(claim, variants=list(study.variants), metrics=metrics)
        except ClaimError as exc:
            raise StudyError(f"{study.path}: claims[{i}]: {exc} (the dataset's classes)") from None


def _validate_latency(study: Study, path: Path) -> None:
    if not isinstance(study.latency, dict):
        _fail(path, "latency", "a dict", study.latency)
    unknown = sorted(set(study.latency) - set(LATENCY_KEYS))
    if unknown:
        _fail(path, f"latency.{unknown[0]}", f"one of {', '.join(LATENCY_KEYS)}")
    lat = study.latency_settings()
    if not isinstance(lat["rounds"], int) or lat["rounds"] < 2:
        _fail(path, "latency.rounds", "a whole number >= 2", lat["rounds"])
    if lat["dtype"] not in ("fp32", "bf16"):
        _fail(path, "latency.dtype", "fp32 or bf16", lat["dtype"])
    if not isinstance(lat["launches"], int) or lat["launches"] < 1:
        _fail(path, "latency.launches", "a whole number >= 1 (each launch is a fresh process)", lat["launches"])
    from ablate.engine.latency_stats import MODES  # torch-free

    if lat["mode"] not in MODES:
        _fail(path, "latency.mode", f"one of {', '.join(MODES)}", lat["mode"])


def train_config_fields() -> set[str]:
    from ablate.engine.config import TrainConfig  # torch-free module

    return {f.name for f in dataclasses.fields(TrainConfig)}


def _known_decoders() -> list[str] | None:
    """Registered decoder names; None (skip the check) while the models package is absent."""
    try:
        from ablate.models import list_decoders
    except ImportError:
        return None
    return sorted(list_decoders())


def _distribution_json(dist) -> dict:
    import json

    from optuna.distributions import distribution_to_json

    return json.loads(distribution_to_json(dist))


def resolved_study(study: Study) -> dict:
    """study.json: the resolved study, library versions, and a fingerprint of what was asked for."""
    import hashlib
    import json
    import platform
    from importlib import metadata

    resolved = study.to_dict()
    asked = {k: v for k, v in resolved.items() if k not in ("path", "imports")}
    resolved["fingerprint"] = hashlib.sha256(json.dumps(asked, sort_keys=True, default=str).encode()).hexdigest()[:16]
    versions = {"python": platform.python_version()}
    for name in ("ablate", "torch", "optuna", "transformers", "timm", "segmentation_models_pytorch"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    resolved["versions"] = versions
    return resolved
