"""A candidate in the published code's own terms: HiFi-GAN's (and BigVGAN's) config keys.

The asks the designer answers (hifi-gan#12, #116, #125, #140, BigVGAN#2: "which upsample_rates
and upsample_kernel_sizes give my hop?") want `upsample_rates` / `upsample_kernel_sizes` for
models.py, whose ups are ConvTranspose1d(k, u, padding=(k - u) // 2) with no output_padding:
L_out = (L - 1) u - 2 ((k - u) // 2) + k = L u + (k - u) mod 2. So a stage is exact when k - u
is even; when it is odd the published formula gives one sample too many per input frame stage,
and the edit that keeps it exact is padding=(k - u + 1) // 2 with output_padding=1.
"""

from __future__ import annotations

import math

from convscope.designer.candidates import Candidate


def hifigan_exact(kernel: int, stride: int) -> bool:
    return (kernel - stride) % 2 == 0


def hifigan_edits(candidate: Candidate) -> list[str]:
    """The ups stages HiFi-GAN's padding formula leaves one sample long, with the fix."""
    return [f"ups.{i}: padding={(layer.kernel - layer.stride + 1) // 2}, output_padding=1 "
            f"(k={layer.kernel}, u={layer.stride}: (k - u) // 2 = "
            f"{(layer.kernel - layer.stride) // 2} gives L x {layer.stride} + 1)"
            for i, layer in enumerate(candidate.layers)
            if not hifigan_exact(layer.kernel, layer.stride)]


def padding_text(candidate: Candidate) -> str:
    """candidates.csv's hifigan_padding: `exact`, or the edits."""
    edits = hifigan_edits(candidate)
    return "exact" if not edits else "edit " + "; ".join(edits)


def hifigan_fields(candidate: Candidate) -> dict:
    """best_hifigan.json: keys to paste into a published config_*.json, and what they promise."""
    edits = hifigan_edits(candidate)
    hop = math.prod(candidate.strides)
    return {"upsample_rates": list(candidate.strides),
            "upsample_kernel_sizes": list(candidate.kernels),
            "hop_size": hop,
            "padding_exact": not edits,
            "padding_edits": [{"stage": i, "padding": (layer.kernel - layer.stride + 1) // 2,
                               "output_padding": 1}
                              for i, layer in enumerate(candidate.layers)
                              if not hifigan_exact(layer.kernel, layer.stride)],
            "padding": ("models.py's padding=(k - u) // 2 keeps every stage exact" if not edits
                        else "models.py's padding=(k - u) // 2 needs these edits: "
                        + "; ".join(edits)),
            "length": f"T frames in, T x {hop} samples out",
            # torch's own geometry for each stage as convscope checked it (what best.yaml runs)
            "convscope_layers": [{"kernel_size": layer.kernel, "stride": layer.stride,
                                  "padding": layer.padding,
                                  "output_padding": layer.output_padding}
                                 for layer in candidate.layers]}
