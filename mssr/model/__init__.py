"""The network, the diffusion math, training and sampling.

The sampler names live here, in a module that imports no torch, so that the command line and the
option checks can use them before the heavy imports.
"""

from typing import Literal, get_args

Sampler = Literal["ddpm", "ddim", "dpmsolver"]
SAMPLERS: tuple[str, ...] = get_args(Sampler)
"""The sampler names, defined here once (the config schema's enums are tested against them)."""
