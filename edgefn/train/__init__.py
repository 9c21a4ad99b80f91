"""Stage 2, train: fine-tune a preset on a dataset (`finetune`), and score any model of a run on a test split
(`evaluate`, with out-of-distribution calibration)."""
