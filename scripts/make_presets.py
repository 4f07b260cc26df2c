"""Write the vocoder presets configs/model/<name>.yaml (hifigan_v1, hifigan_v2, hifigan_v3,
melgan, bigvgan_v2_24k) from the published hyper-parameters, so the ~150 leaf layers of a
generator come from a few lists instead of hand-copied YAML (tests/test_presets.py checks that
the committed files equal this output).

    python scripts/make_presets.py [--out configs/model]

Each file is `# @package _global_`: `model=hifigan_v1` sets the stack (`model`) and the mel
frontend it was trained on (the `frontend` group it names: configs/frontend/); command-line
overrides such as frontend=vocos or data.hop_length=... still win.
Random weights: nothing is downloaded. Sources, read for reference (the code here is our own):
- HiFi-GAN: github.com/jik876/hifi-gan config_v1.json, config_v2.json, config_v3.json, models.py
- MelGAN: github.com/descriptinc/melgan-neurips mel2wav/modules.py, mel2wav/interface.py
- BigVGAN v2: github.com/NVIDIA/BigVGAN configs/bigvgan_v2_24khz_100band_256x.json, bigvgan.py,
  activations.py, alias_free_activation/torch/{act,resample,filter}.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# HiFi-GAN's LRELU_SLOPE (models.py); the last activation before conv_post is F.leaky_relu with
# torch's default slope, 0.01, in the published code.
HIFIGAN_SLOPE = 0.1
TORCH_LEAKY_DEFAULT = 0.01
MELGAN_SLOPE = 0.2  # nn.LeakyReLU(0.2) throughout mel2wav/modules.py

# The published hyper-parameters (the generator's part of each config file).
HIFIGAN = {
    "hifigan_v1": {
        "config": "config_v1.json", "resblock": "1",
        "upsample_rates": [8, 8, 2, 2], "upsample_kernel_sizes": [16, 16, 4, 4],
        "upsample_initial_channel": 512, "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]]},
    "hifigan_v2": {
        "config": "config_v2.json", "resblock": "1",
        "upsample_rates": [8, 8, 2, 2], "upsample_kernel_sizes": [16, 16, 4, 4],
        "upsample_initial_channel": 128, "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]]},
    "hifigan_v3": {
        "config": "config_v3.json", "resblock": "2",
        "upsample_rates": [8, 8, 4], "upsample_kernel_sizes": [16, 16, 8],
        "upsample_initial_channel": 256, "resblock_kernel_sizes": [3, 5, 7],
        "resblock_dilation_sizes": [[1, 2], [2, 6], [3, 12]]},
}
# All three HiFi-GAN configs share the LJSpeech frontend: configs/frontend/hifigan.yaml.
HIFIGAN_FRONTEND = "hifigan"

# melgan-neurips: Generator(80, ngf=32, n_residual_layers=3) as mel2wav/interface.py builds it;
# ratios are hard-coded in Generator. Audio2Mel's defaults are the frontend (fmax None: sr / 2).
MELGAN = {"n_mels": 80, "ngf": 32, "n_residual_layers": 3, "ratios": [8, 8, 2, 2]}
MELGAN_FRONTEND = "melgan"  # configs/frontend/melgan.yaml

BIGVGAN_V2_24K = {
    "config": "configs/bigvgan_v2_24khz_100band_256x.json", "resblock": "1",
    "upsample_rates": [4, 4, 2, 2, 2, 2], "upsample_kernel_sizes": [8, 8, 4, 4, 4, 4],
    "upsample_initial_channel": 1536, "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "activation": "snakebeta", "snake_logscale": True, "use_tanh_at_final": False,
    "use_bias_at_final": False, "num_mels": 100}
BIGVGAN_FRONTEND = "bigvgan_24k"  # configs/frontend/bigvgan_24k.yaml

# Key order in each flow-style layer line: the order torch's constructors take them.
KEY_ORDER = ("type", "in_channels", "out_channels", "kernel_size", "stride", "padding",
             "output_padding", "dilation", "bias", "padding_mode", "negative_slope",
             "activation", "alpha", "logscale", "weight_norm", "reduce")


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding of an odd kernel with dilation, as HiFi-GAN's utils.get_padding."""
    return (kernel_size * dilation - dilation) // 2


# --- layer entries: plain dicts; a container holds `layers` and may carry a `note` comment ---

def conv(cin: int, cout: int, k: int, dilation: int = 1, padding: int | None = None,
         **extra) -> dict:
    layer = {"type": "Conv1d", "in_channels": cin, "out_channels": cout, "kernel_size": k,
                 "padding": get_padding(k, dilation) if padding is None else padding}
    if dilation != 1:
        layer["dilation"] = dilation
    return {**layer, **extra, "weight_norm": True}


def conv_transpose(cin: int, cout: int, k: int, stride: int, padding: int,
                   output_padding: int = 0) -> dict:
    layer = {"type": "ConvTranspose1d", "in_channels": cin, "out_channels": cout, "kernel_size": k,
                 "stride": stride, "padding": padding}
    if output_padding:
        layer["output_padding"] = output_padding
    return {**layer, "weight_norm": True}


def leaky(slope: float) -> dict:
    return {"type": "LeakyReLU", "negative_slope": slope}


def block(kind: str, layers: list, note: str = "", **extra) -> dict:
    return dict(type=kind, **extra, layers=layers, note=note)


# --- HiFi-GAN (models.py: Generator, ResBlock1, ResBlock2) ---

def hifigan_resblock(resblock: str, ch: int, k: int, dilations: list[int]) -> dict:
    """Per dilation d, ResBlock1 is x + conv_1(lrelu(conv_d(lrelu(x)))) and ResBlock2 is
    x + conv_d(lrelu(x)); the block is these units in a row."""
    units = []
    for d in dilations:
        inner = [leaky(HIFIGAN_SLOPE), conv(ch, ch, k, d)]
        if resblock == "1":
            inner += [leaky(HIFIGAN_SLOPE), conv(ch, ch, k, 1)]
        units.append(block("Residual", inner))
    dil = ", ".join(map(str, dilations))
    return block("Sequential", units, f"ResBlock{resblock}: kernel {k}, dilations {dil}")


def hifigan(h: dict) -> list:
    c0 = h["upsample_initial_channel"]
    layers = [conv(80, c0, 7, padding=3, note="conv_pre")]
    stages = list(zip(h["upsample_rates"], h["upsample_kernel_sizes"]))
    for i, (u, k) in enumerate(stages):
        cin, cout = c0 // 2 ** i, c0 // 2 ** (i + 1)
        first = leaky(HIFIGAN_SLOPE)
        first["comment"] = (f"stage {i + 1} of {len(stages)}: x{u}, {cin} -> {cout} channels "
                            f"(kernel {k}, padding (k - u) // 2 = {(k - u) // 2})")
        mrf = [hifigan_resblock(h["resblock"], cout, rk, rd)
               for rk, rd in zip(h["resblock_kernel_sizes"], h["resblock_dilation_sizes"])]
        layers += [first, conv_transpose(cin, cout, k, u, (k - u) // 2),
                   block("Parallel", mrf, f"MRF: the mean of {len(mrf)} ResBlock{h['resblock']}",
                         reduce="mean")]
    final = leaky(TORCH_LEAKY_DEFAULT)
    final["comment"] = "output: F.leaky_relu (torch's default slope 0.01), conv_post, tanh"
    ch = c0 // 2 ** len(stages)
    return layers + [final, conv(ch, 1, 7, padding=3, note="conv_post"), {"type": "Tanh"}]


# --- MelGAN (mel2wav/modules.py: Generator, ResnetBlock) ---

def melgan_resnet_block(dim: int, dilation: int) -> dict:
    """shortcut(x) + block(x): a 1x1 conv beside lrelu, reflect-pad d, conv3 dilation d,
    lrelu, conv1. ReflectionPad1d(d) + Conv1d(padding=0) is Conv1d(padding=d, 'reflect')."""
    branch = block("Sequential", [
        leaky(MELGAN_SLOPE),
        conv(dim, dim, 3, dilation, padding=dilation, padding_mode="reflect"),
        leaky(MELGAN_SLOPE),
        conv(dim, dim, 1, padding=0),
    ])
    return block("Parallel", [conv(dim, dim, 1, padding=0, note="shortcut"), branch],
                 f"ResnetBlock, dilation {dilation}: shortcut + block", reduce="sum")


def melgan(m: dict) -> list:
    mult = 2 ** len(m["ratios"])
    ngf = m["ngf"]
    layers = [conv(m["n_mels"], mult * ngf, 7, padding=3, padding_mode="reflect",
                   note="ReflectionPad1d(3) + conv k7")]
    for i, r in enumerate(m["ratios"]):
        cin, cout = mult * ngf, mult * ngf // 2
        first = leaky(MELGAN_SLOPE)
        first["comment"] = (f"stage {i + 1} of {len(m['ratios'])}: x{r}, {cin} -> {cout} channels "
                            f"(kernel 2r = {2 * r}, padding r // 2 + r % 2, output_padding r % 2)")
        layers += [first, conv_transpose(cin, cout, 2 * r, r, r // 2 + r % 2, r % 2)]
        layers += [melgan_resnet_block(cout, 3 ** j) for j in range(m["n_residual_layers"])]
        mult //= 2
    final = leaky(MELGAN_SLOPE)
    final["comment"] = "output: lrelu, ReflectionPad1d(3) + conv k7, tanh"
    return layers + [final, conv(ngf, 1, 7, padding=3, padding_mode="reflect"),
                     {"type": "Tanh"}]


# --- BigVGAN v2 (bigvgan.py: BigVGAN, AMPBlock1; alias_free_activation/torch/act.py) ---

def anti_aliased(h: dict) -> dict:
    kind = {"snake": "Snake", "snakebeta": "SnakeBeta"}[h["activation"]]
    return {"type": "AntiAliasedActivation", "activation": kind, "logscale": h["snake_logscale"]}


def amp_block1(h: dict, ch: int, k: int, dilations: list[int]) -> dict:
    """Per dilation d: x + conv_1(act(conv_d(act(x)))), each act its own anti-aliased SnakeBeta."""
    units = [block("Residual", [anti_aliased(h), conv(ch, ch, k, d), anti_aliased(h),
                                conv(ch, ch, k, 1)]) for d in dilations]
    dil = ", ".join(map(str, dilations))
    return block("Sequential", units, f"AMPBlock1: kernel {k}, dilations {dil}")


def bigvgan(h: dict) -> list:
    c0 = h["upsample_initial_channel"]
    layers = [conv(h["num_mels"], c0, 7, padding=3, note="conv_pre")]
    stages = list(zip(h["upsample_rates"], h["upsample_kernel_sizes"]))
    for i, (u, k) in enumerate(stages):
        cin, cout = c0 // 2 ** i, c0 // 2 ** (i + 1)
        up = conv_transpose(cin, cout, k, u, (k - u) // 2)
        up["comment"] = (f"stage {i + 1} of {len(stages)}: x{u}, {cin} -> {cout} channels "
                         f"(kernel {k}, padding (k - u) // 2 = {(k - u) // 2}; no activation "
                         "before it: the AMP blocks end each stage)")
        mrf = [amp_block1(h, cout, rk, rd)
               for rk, rd in zip(h["resblock_kernel_sizes"], h["resblock_dilation_sizes"])]
        layers += [up, block("Parallel", mrf, f"the mean of {len(mrf)} AMPBlock1", reduce="mean")]
    final = anti_aliased(h)
    final["comment"] = ("output: activation_post, conv_post without bias (use_bias_at_final "
                        "false), torch.clamp(-1, 1) as Hardtanh (use_tanh_at_final false)")
    ch = c0 // 2 ** len(stages)
    return layers + [final, conv(ch, 1, 7, padding=3, bias=h["use_bias_at_final"],
                                 note="conv_post"), {"type": "Hardtanh"}]


# --- YAML text: block style for containers, one flow-style line per leaf layer ---

def _scalar(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _flow(layer: dict) -> str:
    keys = sorted((k for k in layer if k not in ("note", "comment")), key=KEY_ORDER.index)
    return "{" + ", ".join(f"{k}: {_scalar(layer[k])}" for k in keys) + "}"


def _emit(layer: dict, indent: int, out: list[str]) -> None:
    pad = " " * indent
    if "comment" in layer:
        out.append(f"{pad}# {layer['comment']}")
    note = f"  # {layer['note']}" if layer.get("note") else ""
    if "layers" not in layer:
        out.append(f"{pad}- {_flow(layer)}{note}")
        return
    out.append(f"{pad}- type: {layer['type']}{note}")
    if "reduce" in layer:
        out.append(f"{pad}  reduce: {layer['reduce']}")
    out.append(f"{pad}  layers:")
    for inner in layer["layers"]:
        _emit(inner, indent + 4, out)


def render(name: str, header: str, layers: list, frontend: str, layout: str | None = None) -> str:
    out = ["# @package _global_"]
    out += [f"# {line}" if line else "#" for line in header.strip().splitlines()]
    out += [("# Written by scripts/make_presets.py from the published hyper-parameters: edit that "
            "script,"), "# not this file (tests/test_presets.py checks they agree).", "defaults:",
            f"  - override /frontend: {frontend}  # every feature key (configs/frontend/"
            f"{frontend}.yaml);", "    # frontend=<name> or data.<key>=... on the command line win"]
    out += ["model:", f"  name: {name}"]
    if layout is not None:  # the published checkpoint names model.weights reads (stack/layouts.py)
        out += [f"  layout: {layout}"]
    out += ["  layers:"]
    for layer in layers:
        _emit(layer, 4, out)
    return "\n".join(out) + "\n"


HIFIGAN_HEADER = """
HiFi-GAN {version} generator (Kong et al. 2020), shape-exact to github.com/jik876/hifi-gan
{config} and models.py (Generator, ResBlock{resblock}); random weights, nothing downloaded.
Weight norm on every conv, as models.py wraps them. The frontend is meldataset.py's log mel
(22050 Hz, n_fft 1024, hop 256, 80 bands up to 8 kHz): T frames in, 256 T samples out.
"""

MELGAN_HEADER = """
MelGAN generator (Kumar et al. 2019), shape-exact to github.com/descriptinc/melgan-neurips
mel2wav/modules.py Generator(80, ngf=32, n_residual_layers=3) with ratios 8, 8, 2, 2 (as
mel2wav/interface.py builds it); random weights, nothing downloaded. Weight norm on every conv
(WNConv1d / WNConvTranspose1d). nn.ReflectionPad1d(p) before a conv is written as the conv's own
padding p with padding_mode reflect (torch pads the same way). Frontend: Audio2Mel's defaults
(22050 Hz, n_fft 1024, hop 256, 80 bands, fmax sr / 2); Audio2Mel takes log10 (frontend=melgan).
"""

BIGVGAN_HEADER = """
BigVGAN v2 24 kHz generator (Lee et al. 2023), shape-exact to github.com/NVIDIA/BigVGAN
configs/bigvgan_v2_24khz_100band_256x.json and bigvgan.py (BigVGAN, AMPBlock1): anti-aliased
SnakeBeta activations with log-scale alpha and beta (alias_free_activation/torch/act.py
Activation1d: 2x Kaiser-sinc up, activation, 2x down; activations.py SnakeBeta). Random weights,
nothing downloaded; ~112 M parameters. Frontend: 24 kHz, n_fft 1024, hop 256, 100 bands.
"""


def presets() -> dict[str, str]:
    """File name -> YAML text for every vocoder preset."""
    files = {}
    for name, h in HIFIGAN.items():
        header = HIFIGAN_HEADER.format(version=name.split("_")[1].upper(), config=h["config"],
                                       resblock=h["resblock"])
        files[f"{name}.yaml"] = render(name, header, hifigan(h), HIFIGAN_FRONTEND, "hifigan")
    files["melgan.yaml"] = render("melgan", MELGAN_HEADER, melgan(MELGAN), MELGAN_FRONTEND)
    files["bigvgan_v2_24k.yaml"] = render("bigvgan_v2_24k", BIGVGAN_HEADER,
                                          bigvgan(BIGVGAN_V2_24K), BIGVGAN_FRONTEND, "bigvgan")
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "configs" / "model")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for file_name, text in presets().items():
        (args.out / file_name).write_text(text)
        print(args.out / file_name)


if __name__ == "__main__":
    main()
