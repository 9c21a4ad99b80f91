"""Stage 1, data: named and generic datasets read into train / validation / test splits (label 1 = fake), their
audit for shortcut cues, and the TF-IDF baseline."""
