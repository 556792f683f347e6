"""ONNX export of trained models, their int8 quantization, and the onnxruntime models that
tools/test.py and tools/infer.py run them with (loaded by ``apis/model_source.py``)."""
