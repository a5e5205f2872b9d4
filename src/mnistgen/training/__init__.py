"""Training: one engine (`engine.py`), pluggable losses, and the run around it (`run.py`)."""
