"""End-to-end jobs composed from the library (the demo, comparisons)."""
