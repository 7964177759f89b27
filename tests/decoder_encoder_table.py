"""`python tests/decoder_encoder_table.py`: Params (M) and forward GFLOPs at 256x256, 11 classes, of every shipped decoder on every registered encoder
(+ timm:convnext_tiny), built on the meta device; refused pairs with their one-line reason.
A measurement for notes and the README (about 4 min on 2 cores), not a test."""
import sys
import time

from ablate.errors import ConfigError
from ablate.models import check_model, count_gflops, count_params, list_decoders, list_encoders
from ablate.models.checks import build_on_meta
from ablate.models.decoders.registry import decoder_class

decoders = [d for d in list_decoders() if decoder_class(d).__module__.startswith("ablate.")]
encoders = list_encoders() + ["timm:convnext_tiny"]
refused = []
print("| decoder | " + " | ".join(encoders) + " |")
print("|---|" + "---|" * len(encoders))
t0 = time.time()
for d in decoders:
    cells = []
    for e in encoders:
        try:
            check_model(d, encoder=e, num_classes=11, image_size=(256, 256), batch_size=4)
            m = build_on_meta(d, encoder=e, num_classes=11)
            cells.append(f"{count_params(m):.2f} M / {count_gflops(m, (256, 256)):.1f}")
        except ConfigError as exc:
            cells.append("refused")
            refused.append(f"{d} on {e}: {exc}")
    print(f"| {d} | " + " | ".join(cells) + " |", flush=True)
print(f"\nrefused ({len(refused)}):")
print("\n".join(refused) or "none")
print(f"\n{time.time() - t0:.0f} s", file=sys.stderr)
