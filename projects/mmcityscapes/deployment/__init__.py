"""ONNX export of trained models and the onnxruntime models that tools/test.py and tools/infer.py
run them with."""
