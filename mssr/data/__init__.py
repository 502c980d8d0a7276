"""Data stages: fetch, synthetic demo spectra, projection, preprocessing, splits, HDF5 store."""
