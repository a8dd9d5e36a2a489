"""Edited models: edit requests, the EasyEdit adapter, weight deltas and the edit cache."""
