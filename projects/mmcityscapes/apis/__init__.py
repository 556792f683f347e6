"""Trained models ready to run: ``model_source`` (a checkpoint, a training work dir or an export
loaded as a model) and ``inference`` (``tools/infer.py``)."""
