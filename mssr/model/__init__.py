"""The network, the diffusion math, training and sampling."""
