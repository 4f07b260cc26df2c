"""Write a checkpoint in a published generator's layout, from a preset's seeded random init: what
HiFi-GAN's train.py (or BigVGAN's) saves, {'generator': state_dict} with torch's old weight-norm
keys (conv_pre.weight_g, ups.0.weight_v, resblocks.3.convs1.0.bias, ...), and optionally the
config json its Generator(h) is built from. For docs/checkpoints.md's commands, when you have no
trained checkpoint at hand.

    python scripts/make_published_checkpoint.py hifigan_v2 g_v2.pt --config-json config_v2.json
    python scripts/make_published_checkpoint.py bigvgan_v2_24k bigvgan_generator.pt
"""

import argparse
import json
import sys
from pathlib import Path

import torch

from convscope.config.presets import model_preset
from convscope.errors import ConvscopeError
from convscope.stack.build import build_stack
from convscope.stack.plan import plan_stack
from convscope.stack.preset_weights import published_state_dict
from convscope.stack.published_config import published_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a preset with a published layout: hifigan_v1, hifigan_v2, "
                        "hifigan_v3, bigvgan_v2_24k")
    parser.add_argument("out", type=Path, help="the checkpoint file to write")
    parser.add_argument("--config-json", type=Path, help="also write the generator's config")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        model = model_preset(args.model)
        if model.layout is None:
            raise ConvscopeError(f"model={args.model} has no published layout")
        plans = plan_stack(model.layers, (1, model.layers[0].in_channels, 1))
        stack = build_stack(plans, args.seed)
        torch.save({"generator": published_state_dict(stack, model)}, args.out)
        if args.config_json is not None:
            args.config_json.write_text(json.dumps(published_config(model), indent=2) + "\n")
    except (ConvscopeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {args.out}" + (f" and {args.config_json}" if args.config_json else ""))


if __name__ == "__main__":
    main()
