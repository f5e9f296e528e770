"""PyTorch re-implementations of published SR architectures, with the official releases' state_dict key names."""
