"""Captions of the layer figures (plots/layer{i}_{type}.png): what the layer does to lengths,
channels and rates, and for a transposed layer how many taps land on each output.

Read from shapes.json's rows (their `conv` settings, shapes and rates); no torch.
"""

from __future__ import annotations

from convscope.report.units import hz_text, rate_of


def plot_rows(layers: list[dict], index: int) -> list[dict]:
    """The shapes.json rows one layer figure draws: a config stack's figures are numbered like
    model.layers (a block's figure covers every call inside it); model=module's like the rows."""
    if any("key" in row for row in layers):
        key = f"model.layers.{index}"
        return [row for row in layers
                if row.get("key") == key or row.get("key", "").startswith(key + ".")]
    return [row for row in layers if row["index"] == index]


def conv_label(row: dict) -> str:
    """ConvTranspose1d k5 s2 p2 (d, op, groups and causal when they are not the default)."""
    conv = row.get("conv")
    if not conv:
        return row["type"]
    parts = [row["type"], f"k{conv['kernel_size']}", f"s{conv['stride']}", f"p{conv['padding']}"]
    if conv["dilation"] != 1:
        parts.append(f"d{conv['dilation']}")
    if conv.get("output_padding"):
        parts.append(f"op{conv['output_padding']}")
    if conv["groups"] != 1:
        parts.append(f"groups {conv['groups']}")
    if conv.get("causal"):
        parts.append("causal")
    return " ".join(parts)


def taps_per_output(kernel_size: int, stride: int, padding: int, dilation: int = 1) -> list[int]:
    """How many kernel taps land on each of `stride` consecutive outputs of a ConvTranspose1d,
    from output 0 on (away from the edges; the pattern repeats every `stride` outputs).

    Input l's tap j lands on output l*stride - padding + j*dilation, so output n gets the taps
    with j*dilation = n + padding (mod stride).
    """
    per_phase = [0] * stride
    for tap in range(kernel_size):
        per_phase[(tap * dilation) % stride] += 1
    return [per_phase[(n + padding) % stride] for n in range(stride)]


def layer_caption(index: int, layer_type: str, shapes: dict) -> str:
    rows = plot_rows(shapes["layers"], index)
    if not rows:
        return f"layer {index} ({layer_type}): none of shapes.json's rows is this layer."
    first, last = rows[0], rows[-1]
    label = conv_label(first) if len(rows) == 1 else f"{layer_type}, {len(rows)} calls"
    head = f"layer {index} ({label}): {change_text(first, last, shapes)}"
    if len(rows) > 1:
        sentence = (f"{head}; the block's calls are rows {first['index']}-{last['index']} of the "
                    "layer table, the figure shows its output.")
    elif "conv" in first and "output_padding" in first["conv"]:  # only transposed convs have it
        sentence = f"{head}; {transposed_text(first['conv'])}"
    elif "conv" in first:
        sentence = f"{head}; {conv_text(first, shapes)}"
    elif "pointwise" in first["formula"] or "shape unchanged" in first["formula"]:
        sentence = f"{head}; it acts on each sample on its own: nothing moves in time."
    else:
        sentence = f"{head}; {first['formula']}."
    notes = []
    if first["index"] == 0 and "features" in shapes["input"]:
        notes.append(frames_text(shapes["input"]))
    if "stream" in shapes:
        notes.append("Streamed run: each trace is the min/max envelope of the whole segment.")
    return " ".join([sentence, *notes])


def change_text(first: dict, last: dict, shapes: dict) -> str:
    """`16000 → 32000 samples, 2 → 3 channels, 16 kHz → 32 kHz`: what the layer changes."""
    shape_in, shape_out = first["input_shape"], last["output_shape"]
    if not shape_in or not shape_out:
        return "no tensor shape recorded"
    unit_in, unit_out = (time_unit(row, key, shapes) for row, key in
                         ((first, "sample_rate_in"), (last, "sample_rate_out")))
    if unit_in != unit_out:
        parts = [f"{shape_in[-1]} {unit_in} → {shape_out[-1]} {unit_out}"]
    elif shape_in[-1] != shape_out[-1]:
        parts = [f"{shape_in[-1]} → {shape_out[-1]} {unit_out}"]
    else:
        parts = [f"{shape_in[-1]} {unit_in} kept"]
    if len(shape_in) >= 3 and len(shape_out) >= 3 and shape_in[1] != shape_out[1]:
        parts.append(f"{shape_in[1]} → {shape_out[1]} channel{'s' * (shape_out[1] != 1)}")
    if "sample_rate_in" in first and "sample_rate_out" in last:
        rate_in, rate_out = rate_of(first, "sample_rate_in"), rate_of(last, "sample_rate_out")
        if rate_in != rate_out:
            parts.append(f"{hz_text(rate_in)} → {hz_text(rate_out)}")
    return ", ".join(parts)


def time_unit(row: dict, key: str, shapes: dict) -> str:
    """'frames' on a feature input's frame rate, else 'samples'."""
    source = shapes["input"]
    if "features" in source and key in row and rate_of(row, key) == rate_of(source):
        return "frames"
    return "samples"


def transposed_text(conv: dict) -> str:
    k, s, p, d = conv["kernel_size"], conv["stride"], conv["padding"], conv["dilation"]
    per_tap = f"{k / s:.3g}"
    if s == 1:
        return (f"stride 1 inserts no zeros: every output sums {k} taps, so it filters "
                "without changing the rate.")
    # a causal layer pads nothing and trims its right end: the phases are those of padding 0
    taps = taps_per_output(k, s, 0 if conv.get("causal") else p, d)
    zeros = f"{s - 1} zero{'s go' if s > 2 else ' goes'} between input samples"
    if len(set(taps)) == 1:
        return (f"{zeros} and every output gets {taps[0]} taps (k/s = {per_tap}): the overlap "
                "is even, so a constant input ripples only if the taps of each output phase sum "
                "differently (the stride tone).")
    pattern = (f"outputs alternate {min(taps)} and {max(taps)} taps" if s == 2
               else f"outputs cycle through {', '.join(map(str, taps))} taps")
    gaps = "; those with 0 taps hold only the bias" if 0 in taps else ""
    return (f"{zeros}; with k/s = {per_tap} taps per output, {pattern}{gaps}: the uneven "
            "overlap shows as a ripple on a constant (the stride tone).")


def conv_text(row: dict, shapes: dict) -> str:
    conv = row["conv"]
    k, s, d = conv["kernel_size"], conv["stride"], conv["dilation"]
    span = f" spanning {d * (k - 1) + 1} (dilation {d})" if d != 1 else ""
    unit = time_unit(row, "sample_rate_in", shapes)
    if s == 1:
        return (f"each output is a weighted sum of {k} neighbouring input {unit}{span} of every "
                "input channel: a filter at the same rate.")
    nyquist = (f" ({hz_text(rate_of(row, 'sample_rate_out') / 2)})"
               if "sample_rate_out" in row else "")
    return (f"it keeps one in {s} outputs of a {k}-tap filter{span}: the rate drops {s}x, and "
            f"content above the new Nyquist{nyquist} folds back unless the kernel removed it.")


def frames_text(source: dict) -> str:
    return f"Its input is {source['features']['kind']} frames, not audio: {frames_summary(source)}."


def frames_summary(source: dict) -> str:
    """What a feature input's frames are: bands, hop, the audio they were made from."""
    features, target = source["features"], source["target"]
    if target is None:  # precomputed frames
        return (f"{source['shape'][1]} channels x {source['shape'][-1]} frames read from a file, "
                "with no target audio")
    hop, audio_rate = features["hop_length"], rate_of(target)
    bands = (f"{features['n_mels']} bands ({features['fmin']:g}-{features['fmax']:g} Hz)"
             if features.get("n_mels") else f"{source['shape'][1]} bins")
    return (f"{bands} x {source['shape'][-1]} frames, one every {hop} samples of the "
            f"{hz_text(audio_rate)} audio ({float(1000 * hop / audio_rate):.3g} ms)")
