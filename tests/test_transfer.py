"""The device transfer code of streamed runs (stack/transfer.py): run here on the CPU (no pinning,
no streams, the same staging and one-block handoff), and on CUDA where a GPU exists."""

from __future__ import annotations

import pytest
import torch

from convscope.config.schema import LayerConfig
from convscope.errors import ConvscopeError
from convscope.stack.build import build_stack
from convscope.stack.plan import plan_stack
from convscope.stack.streaming import layer_rules, stream_forward
from convscope.stack.trace import check_finite
from convscope.stack.transfer import HostHandoff, to_device_ahead
from tests.streams import InOrder, assert_same_outputs, layer_outputs

T = "ConvTranspose1d"
REFERENCE = [
    LayerConfig(type=T, in_channels=1, out_channels=2, kernel_size=3, stride=1, padding=1),
    LayerConfig(type="LeakyReLU", negative_slope=0.1),
    LayerConfig(type=T, in_channels=2, out_channels=3, kernel_size=5, stride=2, padding=2,
                output_padding=1)]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def test_to_device_ahead_keeps_order_and_stages_one_block_ahead():
    pulled = []

    def source():
        for i in range(5):
            pulled.append(i)
            yield torch.full((1, 1, 3), float(i))

    moved = to_device_ahead(source(), torch.device("cpu"))
    first = next(moved)
    assert pulled == [0, 1]  # block 1 was staged before block 0 was handed over
    assert [float(first[0, 0, 0])] + [float(b[0, 0, 0]) for b in moved] == [0, 1, 2, 3, 4]


def streamed_through_handoff(device: str, all_layers: bool, length=5003, block=640):
    plans = plan_stack(REFERENCE, (1, 1, length))
    stack = build_stack(plans, 0).to(device)
    x = torch.randn(1, 1, length, generator=torch.Generator().manual_seed(0))
    collect = InOrder(len(plans))
    handoff = HostHandoff(collect, len(plans) - 1, torch.device(device), all_layers)
    host_blocks = (x[..., i: i + 700] for i in range(0, length, 700))
    stream_forward(layer_rules(plans, stack), to_device_ahead(host_blocks, torch.device(device)),
                   block, handoff)
    handoff.finish()
    return layer_outputs(stack.cpu(), x), collect


@pytest.mark.parametrize("device", DEVICES)
def test_handoff_passes_every_block_in_order_one_block_late(device):
    expected, collect = streamed_through_handoff(device, all_layers=True)
    streamed = [torch.cat([p.cpu() for p in pieces], dim=-1) for pieces in collect.pieces]
    assert_same_outputs(expected, streamed)
    assert all(p.device.type == "cpu" for p in collect.pieces[-1])  # the last layer: on the host


@pytest.mark.parametrize("device", DEVICES)
def test_handoff_without_plots_passes_only_the_last_layer(device):
    expected, collect = streamed_through_handoff(device, all_layers=False)
    assert collect.pieces[0] == [] and collect.pieces[1] == []
    assert_same_outputs(expected[-1:], [torch.cat(collect.pieces[-1], dim=-1)])


@pytest.mark.parametrize("device", DEVICES)
def test_handoff_names_the_first_layer_that_gave_nan(device):
    plans = plan_stack(REFERENCE, (1, 1, 4000))
    stack = build_stack(plans, 0).to(device)
    x = torch.randn(1, 1, 4000)
    x[..., 2500] = float("inf")  # inf * 0-free weights -> inf/nan from layer 0 on

    def checking_sink(layer, start, samples):
        check_finite(samples, plans[layer].key, plans[layer].type, start)

    handoff = HostHandoff(checking_sink, len(plans) - 1, torch.device(device), all_layers=False)
    first = rf"^{plans[0].key}: ConvTranspose1d gave a non-finite"
    with pytest.raises(ConvscopeError, match=first):
        stream_forward(layer_rules(plans, stack),
                       to_device_ahead(iter([x[..., :2000], x[..., 2000:]]),
                                       torch.device(device)), 1000, handoff)
        handoff.finish()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device exists here")
def test_cuda_without_a_gpu_is_one_device_error_and_auto_falls_back_to_cpu():
    from convscope.stack.trace import pick_device

    with pytest.raises(ConvscopeError, match=r"^device: 'cuda' requested"):
        pick_device("cuda")
    assert pick_device("auto").type == "cpu"


def test_gpu_runs_stream_longer_blocks_and_cpu_runs_keep_theirs():
    """The device's block size is decided (preflight.device_blocks), never written back into
    the config: the config keeps what the user composed."""
    from convscope.config.schema import RunConfig
    from convscope.pipeline.preflight import GPU_BLOCK_FACTOR, device_blocks

    cfg = RunConfig()
    cpu = device_blocks(cfg.stream, cfg.limits, torch.device("cpu"))
    assert (cpu.seconds, cpu.mb, cpu.factor) == (cfg.stream.block_seconds, cfg.limits.block_mb, 1)
    gpu = device_blocks(cfg.stream, cfg.limits, torch.device("cuda"))  # no GPU needed to build it
    assert gpu.seconds == cfg.stream.block_seconds * GPU_BLOCK_FACTOR
    assert gpu.mb == cfg.limits.block_mb * GPU_BLOCK_FACTOR
    assert gpu.as_json()["factor"] == GPU_BLOCK_FACTOR
    assert cfg.stream.block_seconds == RunConfig().stream.block_seconds  # not rewritten
    cfg.stream.mode = "stateful"  # chunks of block_seconds are its latency: left alone
    assert device_blocks(cfg.stream, cfg.limits, torch.device("cuda")).factor == 1
