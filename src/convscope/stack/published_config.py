"""A preset's hyper-parameters as the published config object (`h`) its published class takes:
the keys of HiFi-GAN's config_v*.json and BigVGAN's config json that decide the generator's
shapes, read off the preset's layers (the top-level convs, ConvTranspose1d stages and the
Parallel blocks' Residuals), so a checkpoint written here can be loaded by the published code."""

from __future__ import annotations

from convscope.config.schema import LayerConfig, ModelConfig
from convscope.errors import ConvscopeError

CONVS = ("Conv1d", "ConvTranspose1d")


def published_config(model: ModelConfig) -> dict:
    """upsample_rates, upsample_kernel_sizes, upsample_initial_channel, resblock,
    resblock_kernel_sizes, resblock_dilation_sizes (and BigVGAN's activation keys)."""
    if model.layout is None:
        raise ConvscopeError(f"model {model.name} has no published layout (model.layout)")
    layers = model.layers
    convs = [layer for layer in layers if layer.type == "Conv1d"]
    ups = [layer for layer in layers if layer.type == "ConvTranspose1d"]
    fusion = next(layer for layer in layers if layer.type == "Parallel")
    kernels, dilations, per_residual = [], [], 0
    for branch in fusion.layers or []:
        residuals = branch.layers or []
        inner = [[conv for conv in residual.layers or [] if conv.type in CONVS]
                 for residual in residuals]
        per_residual = len(inner[0])
        kernels.append(inner[0][0].kernel_size)
        dilations.append([convs_of[0].dilation or 1 for convs_of in inner])
    h = {"num_mels": convs[0].in_channels, "upsample_rates": [u.stride for u in ups],
         "upsample_kernel_sizes": [u.kernel_size for u in ups],
         "upsample_initial_channel": convs[0].out_channels,
         "resblock": "1" if per_residual == 2 else "2", "resblock_kernel_sizes": kernels,
         "resblock_dilation_sizes": dilations}
    if model.layout == "bigvgan":
        activation = _first_activation(layers)
        h.update(activation=(activation.activation or "Snake").lower(),
                 snake_logscale=bool(activation.logscale),
                 use_tanh_at_final=layers[-1].type == "Tanh",
                 use_bias_at_final=convs[-1].bias is not False)
    return h


def _first_activation(layers: list[LayerConfig]) -> LayerConfig:
    for layer in layers:
        if layer.type == "AntiAliasedActivation":
            return layer
        found = _first_activation(layer.layers or []) if layer.layers else None
        if found is not None:
            return found
    return None
