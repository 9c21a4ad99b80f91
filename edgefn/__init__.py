"""edgefn: fine-tune, export, quantize and benchmark small transformer text classifiers."""

__version__ = "0.1.0"
