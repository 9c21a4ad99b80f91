"""Stage-independent ground: errors, the output policy, environment facts, text-file reading, metrics and
model presets. Imports nothing else of edgefn."""
