"""Stage-independent ground: errors, the output policy, environment facts, text-file reading, metrics and
model presets and their weights. Imports nothing else of edgefn."""
