"""The leaf of the layers: classified errors, the clock, ids. Imports nothing of ours."""
