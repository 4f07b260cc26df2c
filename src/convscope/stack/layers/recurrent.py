"""Recurrent family: LSTM, GRU, RNN (the _VF ops nn.LSTM & co. call).

A recurrent output depends on every earlier sample (and, bidirectional, every later one): no
finite receptive field, which the row says instead of a number.
"""

from __future__ import annotations

from convscope.stack.layers.flow import Flow, Op, unresolved

NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN", "rnn_relu": "RNN"}


def recurrent_reason(kind: str, bidirectional: bool) -> str:
    if bidirectional:
        return f"recurrent ({kind}, bidirectional): depends on every sample"
    return f"recurrent ({kind}): depends on every earlier sample"


def recurrent(op: Op) -> Flow:
    """_VF.lstm(input, hx, params, has_biases, num_layers, dropout, train, bidirectional,
    batch_first): the output's time axis is 1 when batch_first, else 0."""
    bidirectional = bool(op.args[7]) if len(op.args) > 8 else False
    batch_first = bool(op.args[8]) if len(op.args) > 8 else False
    return unresolved(recurrent_reason(NAMES[op.name], bidirectional), 1 if batch_first else 0)


OPS = {name: recurrent for name in NAMES}
