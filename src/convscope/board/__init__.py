"""TensorBoard event files from what a finished run dir holds on disk (tensorboard=true,
`convscope tensorboard <run dir>`): its WAVs, figures, layer table and numbers, no torch needed."""
