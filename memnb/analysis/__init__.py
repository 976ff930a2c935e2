"""Analysis of stored runs: timing statistics, the verdict, anomaly detection, early stopping, sample quality, sanity checks."""
