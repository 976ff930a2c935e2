"""The metric: exact neighbour search, the memorization criteria (a registry), null levels and data copying.

Pure functions on arrays: distances in data units, shapes in each docstring.
"""
