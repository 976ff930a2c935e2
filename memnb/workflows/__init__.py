"""Workflows: the paper's figure configurations and profiles, rendering the notebooks, sweeps, the applications' grids."""
