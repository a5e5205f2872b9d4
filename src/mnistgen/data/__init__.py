"""MNIST: download, parse, validate and version."""
