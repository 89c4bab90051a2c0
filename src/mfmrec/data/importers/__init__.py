"""Importers: each reads one source format into a RawDataset and writes it."""
