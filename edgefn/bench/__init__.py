"""Stage 4, bench: accuracy, size and latency of every variant and peer, interleaved rounds, the report and the
what-to-ship verdict."""
