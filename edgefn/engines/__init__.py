"""The engines a model runs on besides ONNX Runtime: the PyTorch reference."""
