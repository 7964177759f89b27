"""Checks of a loaded study that build its models: made once at load, so a bad setting is one line now,
not an error after the first run has trained for hours."""

from __future__ import annotations

from ablate.errors import ConfigError, StudyError


def check_variants_build(study, path, *, train_fields: set[str]) -> None:
    """Each variant's decoder on its encoder, with its fixed settings, built once on the meta device (shapes
    only: no memory, no weights) and run at its image size: a tuned name that is no setting, too small an image
    (naming the smallest the model takes), a setting typo (naming the valid ones), a level mismatch (naming the
    encoders that fit) or a shape error is one line naming the variant. ``train_fields``: TrainConfig's field names
    (passed in by ablate.study.definition, which imports this module: no circle back)."""
    try:
        from ablate.models import check_model, decoder_defaults
        from ablate.models.input_size import InputTooSmall, check_input_size
    except ImportError:  # the models package is absent (torch-free use): nothing to build
        return
    fields_ = train_fields
    for name in study.variants:
        try:
            cfg = study.train_settings(name, {}, seed=0)
            settings = decoder_defaults(cfg["decoder"])
            tuned = sorted(k for k in study.space(name) if k not in fields_ and k not in settings)
            if tuned:
                raise ConfigError(f"search_space {', '.join(tuned)}: not a setting of decoder {cfg['decoder']!r} "
                                  f"({', '.join(sorted(settings)) or 'none'}) nor a TrainConfig field")
            try:
                check_model(cfg["decoder"], encoder=cfg["encoder"], decoder_cfg=cfg["decoder_cfg"],
                            image_size=cfg["image_size"], batch_size=cfg.get("batch_size", 4))
            except ConfigError as exc:  # too small an image: say the smallest it takes, else check_model's line
                try:
                    check_input_size(cfg["decoder"], cfg["image_size"], encoder=cfg["encoder"],
                                     decoder_cfg=cfg["decoder_cfg"])
                except InputTooSmall as small:
                    raise small from None
                except ConfigError:
                    pass
                raise exc from None
        except ConfigError as exc:
            raise StudyError(f"{path}: variants.{name}: {exc}") from None
