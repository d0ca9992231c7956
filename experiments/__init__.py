"""PyTorch experiments of the computer assignments."""
