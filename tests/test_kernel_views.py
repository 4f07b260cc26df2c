"""kernels_by_channel_pair names the channels a kernel really connects, groups included."""

import numpy as np
import pytest
import torch

from convscope.config.schema import LayerConfig
from convscope.quality.kernel_views import kernels_by_channel_pair
from convscope.stack.build import build_stack
from convscope.stack.plan import plan_stack


@pytest.mark.parametrize("layer_type", ["Conv1d", "ConvTranspose1d"])
@pytest.mark.parametrize("groups", [1, 2])
def test_pairs_match_an_impulse_through_torch(layer_type, groups):
    spec = LayerConfig(type=layer_type, in_channels=4, out_channels=6, kernel_size=3,
                       groups=groups, bias=False)
    plan = plan_stack([spec], (1, 4, 20))[0]
    layer = build_stack([plan], 0)[0]
    pairs = kernels_by_channel_pair(plan, layer.weight.detach().numpy())
    assert len(pairs) == 4 * 6 // groups
    for i in range(4):
        x = torch.zeros(1, 4, 20)
        x[0, i, 10] = 1
        with torch.no_grad():
            y = layer(x)[0].numpy()
        for o in range(6):
            assert ((i, o) in pairs) == bool(np.abs(y[o]).sum() > 0), (i, o)
            if (i, o) in pairs:
                taps = pairs[(i, o)]
                # a transposed conv scatters the taps; a conv correlates, so reads them reversed
                expected = taps if layer_type == "ConvTranspose1d" else taps[::-1]
                start = 10 - plan.left_padding if layer_type == "ConvTranspose1d" else 10 - 2
                np.testing.assert_allclose(y[o, start:start + 3], expected, atol=1e-7)
