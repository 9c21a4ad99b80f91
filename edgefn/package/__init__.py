"""Stage 5, package: a run's variants for a browser (onnxruntime-web page) or a phone (ORT format)."""
