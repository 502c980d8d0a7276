"""mssr: multi-field super-resolution of 2D protein NMR spectra (MSSR).

Turns a spectrum recorded on a low-field spectrometer into an estimate of what a high-field
instrument would have recorded, with a conditional denoising diffusion model.
"""

__version__ = "0.1.0"
