"""Analysis of stored runs: timing statistics, the verdict, anomaly detection, early stopping, sample quality, time scales (tau_gen, tau_mem), sanity checks."""
