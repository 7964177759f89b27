"""Checks of a loaded study that build its models: made once at load, so a bad setting is one line now,
not an error after the first run has trained for hours."""

from __future__ import annotations

from ablate.errors import ConfigError, StudyError


def check_variants_build(study, path) -> None:
    """Every variant's model, with its fixed settings, built once on the meta device (shapes only, no memory,
    no weights) and run at its image size: a setting typo names the variant, the setting and the valid ones;
    too small an image names the smallest the model takes. Tuned settings are checked by the search space."""
    try:
        from ablate.models.input_size import check_input_size
    except ImportError:  # the models package is absent (torch-free use): nothing to build
        return
    for name in study.variants:
        try:
            cfg = study.train_settings(name, {}, seed=0)
            check_input_size(cfg["decoder"], cfg["image_size"], decoder_cfg=cfg.get("decoder_cfg"))
        except ConfigError as exc:
            raise StudyError(f"{path}: variants.{name}: {exc}") from None
