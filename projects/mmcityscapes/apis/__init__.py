"""Running trained models on images: ``inference`` (``tools/infer.py``)."""
