"""TF-IDF + logistic-regression baseline trained on the same splits as the transformer."""

from __future__ import annotations

import time
from typing import Any

from edgefn.core.metrics import classification_metrics
from edgefn.data.catalog import DatasetBundle


def tfidf_baseline(data: DatasetBundle, seed: int = 42) -> dict[str, Any]:
    """Fit word 1-2-gram TF-IDF + logistic regression on train (C tuned on validation); score test.

    Returns:
        Test metrics (as `classification_metrics`) plus the chosen C and the fit time.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=True)
    x_train = vec.fit_transform(data.train.texts)
    x_val, x_test = vec.transform(data.validation.texts), vec.transform(data.test.texts)
    best: tuple[float, float, Any] = (-1.0, 0.0, None)
    for c in (0.5, 2.0, 8.0, 32.0):
        clf = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x_train, data.train.labels)
        val_acc = float((clf.predict(x_val) == data.validation.labels).mean())
        if val_acc > best[0]:
            best = (val_acc, c, clf)
    _, c, clf = best
    metrics = classification_metrics(data.test.labels, clf.predict(x_test).tolist())
    metrics.update(
        {
            "model": "tfidf-1-2gram + logistic regression",
            "C": c,
            "validation_accuracy": best[0],
            "fit_seconds": time.perf_counter() - start,
        }
    )
    return metrics
