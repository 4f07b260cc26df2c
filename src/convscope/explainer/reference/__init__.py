"""From-scratch NumPy versions of torch's conv1d, conv_transpose1d and conv_transpose2d, and the
views of them the explainer shows. The names callers use, gathered from the modules below:
ops (torch's functions and the three transposed algorithms), views (scatter rows, zero
insertion, the matrix), checks (argument errors), arrays (plumbing)."""

from convscope.explainer.reference.checks import check_conv_args, check_conv_transpose_args
from convscope.explainer.reference.ops import (
                                               TRANSPOSE_METHODS_1D,
                                               TRANSPOSE_METHODS_2D,
                                               conv1d,
                                               conv_transpose1d,
                                               conv_transpose2d,
)
from convscope.explainer.reference.views import (
                                               MAX_MATRIX_ENTRIES,
                                               block_diagonal_weight,
                                               conv1d_sums,
                                               conv1d_terms,
                                               conv_matrix,
                                               flip_kernel,
                                               full_canvas_shape,
                                               insert_zeros,
                                               pad_or_crop,
                                               scatter_rows,
                                               simplified_recipe,
                                               transpose_edge_padding,
                                               zero_insert_and_pad,
)

__all__ = [
    "MAX_MATRIX_ENTRIES", "TRANSPOSE_METHODS_1D", "TRANSPOSE_METHODS_2D", "block_diagonal_weight",
    "check_conv_args", "check_conv_transpose_args", "conv1d", "conv1d_sums", "conv1d_terms",
    "conv_matrix", "conv_transpose1d", "conv_transpose2d", "flip_kernel", "full_canvas_shape",
    "insert_zeros", "pad_or_crop", "scatter_rows", "simplified_recipe", "transpose_edge_padding",
    "zero_insert_and_pad",
]
