"""Cityscapes itself, without torch or OpenMMLab: ids and labels, file names, the test server's
formats, the official evaluations, the converter and the generator, and the helpers they share
(atomic files, tables and figures, a parallel map, the one error type). The layer rule is in the
plugin README."""
