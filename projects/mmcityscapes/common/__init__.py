"""General torch-free infrastructure: the error type and tool wrapper, atomic files, tables,
figures, training logs and the process pool (no torch, no OpenMMLab, nothing of Cityscapes)."""
