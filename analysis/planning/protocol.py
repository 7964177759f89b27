"""Whether a pilot followed the protocol of the study it plans: a plan carries over only what the pilot
measured, so every difference that moves the effect, its seed-to-seed spread or the test split is named
with what it does to the plan (``ablate plan`` prints them above the plan)."""

from __future__ import annotations

# field -> what a difference does to the plan
CONSEQUENCES = {
    "data": "the effects and their spread were measured on other data, so the seeds and hours planned say nothing "
            "reliable about the study's",
    "pretrained": "pretrained and random-init encoders give different effects and seed-to-seed spreads, so the seeds "
                  "needed can be off in either direction",
    "image_size": "effects and spreads change with resolution; hours are scaled by pixels, roughly",
    "epochs": "effects change with training length (the deeper decoders can lose early and win late); hours are "
              "scaled by epochs, roughly",
    "eval_split": "the pilot was judged on the test split, so that split is no longer unseen for the study's "
                  "verdicts; a pilot judges on val",
    "train": "other training settings change the effects and spreads the plan rests on",
}


def protocol_differences(pilot: dict, study: dict) -> list[str]:
    """One line per way the pilot's study.json differs from the planned study's protocol (``Study.to_dict()``),
    each saying what it does to the plan; empty when the pilot followed it."""
    out = []  # only what the pilot's study.json records is compared (a hand-made pilot may record little)
    p_data, s_data = pilot.get("data") or {}, study.get("data") or {}
    if "data" in pilot and p_data.get("kind") != s_data.get("kind"):
        what = "synthetic scenes" if p_data.get("kind") == "synthetic" else f"data kind {p_data.get('kind')!r}"
        out.append(f"data: the pilot ran on {what}, the study on {s_data.get('kind')!r}: {CONSEQUENCES['data']}")
    if "pretrained" in pilot and _weights(pilot.get("pretrained")) != _weights(study.get("pretrained")):
        out.append(f"encoder weights: the pilot used {_weights(pilot.get('pretrained'))}, the study "
                   f"{_weights(study.get('pretrained'))}: {CONSEQUENCES['pretrained']}")
    if "image_size" in pilot and list(pilot["image_size"] or []) != list(study.get("image_size") or []):
        out.append(f"image size: the pilot {_size(pilot.get('image_size'))}, the study {_size(study.get('image_size'))}: "
                   f"{CONSEQUENCES['image_size']}")
    p_train, s_train = pilot.get("train") or {}, study.get("train") or {}
    if "epochs" in p_train and p_train.get("epochs") != s_train.get("epochs"):
        out.append(f"epochs: the pilot {p_train.get('epochs')}, the study {s_train.get('epochs')}: "
                   f"{CONSEQUENCES['epochs']}")
    if pilot.get("eval_split") == "test":
        out.append(f"eval split: {CONSEQUENCES['eval_split']}")
    ignored = {"epochs", "eval_batch_size", "log_every", "device", "amp", "num_workers"}  # cost, not the effect
    other = sorted(k for k in set(p_train) | set(s_train) if "train" in pilot and k not in ignored
                   and p_train.get(k) != s_train.get(k))
    if other:
        pairs = ", ".join(f"{k} {p_train.get(k)!r} vs {s_train.get(k)!r}" for k in other)
        out.append(f"training settings (pilot vs study): {pairs}: {CONSEQUENCES['train']}")
    return out


def _weights(pretrained) -> str:
    return "random init" if pretrained in (None, "", "none") else f"pretrained {pretrained}"


def _size(size) -> str:
    return "x".join(str(v) for v in size) if size else "unknown"
