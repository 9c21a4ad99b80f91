"""Stage 3, export: ONNX fp32 through Optimum, graph optimisation, the quantization schemes (and those of the engines' export hooks)."""
