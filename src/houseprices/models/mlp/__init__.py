"""The skorch-wrapped PyTorch MLP (torch is imported only where a net is built)."""
