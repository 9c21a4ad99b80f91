"""Serving: tokenise, run a model, label the texts (`Classifier`), and predict's streamed inputs and outputs.
Torch-free: what `edgefn predict` and the packages load."""
