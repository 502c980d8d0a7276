"""Test sets, classical methods, peaks, metrics, tables and studies."""
