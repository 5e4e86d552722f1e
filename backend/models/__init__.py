"""Network architectures (PyTorch). Imported only when a network runs."""
