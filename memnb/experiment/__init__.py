"""The run engine: the per-repeat data side, tabulation, stored results, the resumable runner, callback replay."""
