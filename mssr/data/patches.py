"""Training pairs of the native-resolution mode: patches of 1H-15N spectra on the working grid.

Each item is a square patch of a 2D 1H-15N spectrum of a real protein (assigned shifts from RefDB,
peak list of :func:`mssr.data.synthetic.peak_list`) as it would be recorded on a high-field magnet
(the target) and on a low-field one (the input), both on the working grid of the high field
(:mod:`mssr.data.grid`: a fixed spacing in Hz at the target field per nucleus). Everything that a
real pair varies in is drawn per item, so one model covers it:

- the fields: target ``B_high`` in [``high_mhz``] and input ``B_low >= low_min_mhz``, with
  ``ln f`` uniform, ``f = B_high / B_low`` in [1, ``max_factor``];
- the experiment (HSQC or TROSY) and the protein's size, through the linewidth models below;
- each peak's own linewidth (log-normal scatter), height and sign;
- the apodization: a Gaussian component per axis of fixed width in Hz (the same acquisition time
  at both fields, as the ``real`` pairs assume: every line fixed in Hz), so each line is a Voigt
  profile;
- the high-field signal-to-noise ratio.

Line shapes are analytic, so the low-field spectrum of each peak is exact: a Voigt profile whose
Lorentzian and Gaussian parts have their low-field widths, its volume kept (:func:`scipy.special.voigt_profile`
is area-normalized). Broadening every line of an axis by the same Lorentzian, as
:func:`mssr.degrade.simulate` does, is the special case of equal added widths.

Linewidth models (FWHM in Hz at a 1H field ``B`` in MHz; estimates after NMR_NOTES.md):

- 1H: ``lw_1h`` (field independent, dipolar), in ``lw_1h_hz`` (default 12-40 Hz);
- 15N HSQC: ``d + c (B / 900)^2``, ``d`` 3-12 Hz, ``c`` 0.5-4 Hz (CSA grows with B0^2);
- 15N TROSY: ``e + d (1 - B / B_opt)^2``, ``B_opt`` 900-1100 MHz, ``d`` 10-40 Hz, ``e`` 3-8 Hz
  (dipolar/CSA cancellation best near 1 GHz).

Noise: the high-field noise ``sigma_high = max height / snr``; the low-field noise follows the
peak-height rule S/N ~ B0^(3/2) for a line of equal width in Hz: a reference line with the
spectrum's median high-field widths in Hz, drawn on the working grid at both fields (wider in ppm
at low field, so lower), gives ``sigma_low = h_ref,low / (h_ref,high / sigma_high / f^1.5)``.

The network sees both spectra divided by :func:`network_scale` of the low-field patch; the scale of
a patch is drawn as if the plane's strongest peak were elsewhere (``max_scale_ratio``), as in a
tile of a whole plane (:mod:`mssr.enhance.native`). With ``anchor``, the low-field patch is drawn
with a margin of half a patch on each side, deconvolved (:func:`mssr.model.anchor.deconvolve`) by
the Lorentzian ``(f - 1) x`` the median high-field FWHM (Voigt, :func:`voigt_fwhm`) per axis, times
a log-normal jitter, and cut back to the patch: the network is given that anchor instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from scipy.special import voigt_profile

from mssr.data import synthetic
from mssr.data.grid import working_spacing_hz
from mssr.data.linewidths import linewidth_15n_hz, width_ratio
from mssr.spectrum import GYROMAGNETIC_RATIO_TO_1H

NETWORK_HEADROOM: float = 8.0
"""The network's intensity unit is this many times the strongest low-field height: lines that
narrow at high field grow taller, and the sampler keeps its estimates within [-1, 1]."""

_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def network_scale(x_lr: np.ndarray) -> float:
    """The intensity unit of the network for a low-field spectrum (plane or patch).

    ``x_net = x / network_scale(x_lr)`` for the input and the estimate alike; the one scaling of
    the native mode, used by training (:class:`PatchPairs`), the test sets and
    :mod:`mssr.enhance.native`.

    Parameters
    ----------
    x_lr : ndarray
        Low-field spectrum, any intensity unit.

    Returns
    -------
    float
        ``NETWORK_HEADROOM * max|x_lr|`` (> 0).

    Raises
    ------
    ValueError
        If ``x_lr`` is all zero or not finite.
    """
    x_lr = np.asarray(x_lr)
    peak = float(np.max(np.abs(x_lr))) if x_lr.size else 0.0
    if not math.isfinite(peak) or peak <= 0:
        raise ValueError("x_lr must be finite and not all zero to be scaled for the network")
    return NETWORK_HEADROOM * peak


@dataclass(frozen=True)
class PatchConfig:
    """What the training pairs are drawn from.

    Attributes
    ----------
    size : int
        Patch side, working points.
    high_mhz : (float, float)
        Range of the target field, 1H MHz.
    low_min_mhz : float
        Lowest input field, 1H MHz.
    max_factor : float
        Largest upscaling factor.
    trosy_fraction : float
        Share of TROSY items (the rest HSQC).
    snr : (float, float)
        Range of the high-field peak-height S/N of the strongest peak (log-uniform).
    apod_1h_hz, apod_15n_hz : (float, float)
        Range of the Gaussian (apodization) FWHM at the target field, Hz.
    lw_1h_hz : (float, float)
        Range of the 1H Lorentzian FWHM (field independent), Hz; each peak scatters around it.
    noise_corr_px : (float, float)
        Range of the low-field noise's correlation length, working points: the white noise is
        smoothed by a Gaussian of this SD on each axis (drawn per axis) and rescaled to its SD, as
        the noise of an apodized, zero-filled or interpolated spectrum is. (0, 0): white noise.
    on_peak : float
        Share of patches centred near a peak (the rest anywhere in the spectrum window).
    extra_peaks : float
        Mean number of extra random peaks per patch (crowding of larger proteins).
    max_scale_ratio : float
        The plane's strongest low-field height is up to this many times the patch's (log-uniform).
    anchor : bool
        Give the network the anchor of the low-field patch (:mod:`mssr.model.anchor`) instead of
        the patch itself: its deconvolution by the kernel of the patch's median line (jittered).
    anchor_rule : {'fixed', 'experiment'}
        How the anchor's kernel follows from that line: ``fixed``, lines fixed in Hz (``(f - 1) W``);
        ``experiment``, the typical rule of the patch's own experiment
        (:func:`mssr.data.linewidths.width_ratio`, ``(r f - 1) W``), as ``enhance --experiment``
        computes it.
    factor : float or None
        A single upscaling factor ``B_high / B_low`` for every pair (a single-factor baseline);
        None draws it (:func:`draw_fields`).
    """

    size: int = 64
    high_mhz: tuple[float, float] = (600.0, 1200.0)
    low_min_mhz: float = 300.0
    max_factor: float = 4.0
    trosy_fraction: float = 0.35
    snr: tuple[float, float] = (30.0, 3000.0)
    apod_1h_hz: tuple[float, float] = (0.0, 16.0)
    apod_15n_hz: tuple[float, float] = (0.0, 30.0)
    lw_1h_hz: tuple[float, float] = (12.0, 40.0)
    noise_corr_px: tuple[float, float] = (0.0, 0.0)
    on_peak: float = 0.85
    extra_peaks: float = 2.0
    max_scale_ratio: float = 20.0
    anchor: bool = False
    anchor_rule: str = "fixed"
    factor: float | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "PatchConfig":
        if not isinstance(d, dict):
            raise TypeError(f"patch config must be a mapping, got {type(d).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"patches: unknown key(s) {', '.join(unknown)}; expected {sorted(known)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        cfg = cls(**values)
        if not isinstance(cfg.size, int) or cfg.size < 16 or cfg.size % 8:
            raise ValueError(f"patches.size must be an int >= 16 divisible by 8, got {cfg.size!r}")
        if not 1.0 < cfg.max_factor <= 10.0:
            raise ValueError(f"patches.max_factor must be in (1, 10], got {cfg.max_factor}")
        if not 0 < cfg.low_min_mhz < cfg.high_mhz[0] <= cfg.high_mhz[1]:
            raise ValueError("patches needs 0 < low_min_mhz < high_mhz[0] <= high_mhz[1]")
        for key in ("lw_1h_hz", "noise_corr_px", "apod_1h_hz", "apod_15n_hz", "snr", "high_mhz"):
            lo_hi = getattr(cfg, key)
            if len(lo_hi) != 2 or not 0 <= lo_hi[0] <= lo_hi[1]:
                raise ValueError(f"patches.{key} must be a range [low, high] with 0 <= low <= high, got {list(lo_hi)}")
        if cfg.anchor_rule not in ("fixed", "experiment"):
            raise ValueError(f"patches.anchor_rule must be 'fixed' or 'experiment', got {cfg.anchor_rule!r}")
        if cfg.factor is not None:
            if isinstance(cfg.factor, bool) or not isinstance(cfg.factor, (int, float)) \
                    or not 1.0 < cfg.factor <= cfg.max_factor:
                raise ValueError(f"patches.factor must be null or a number in (1, max_factor = {cfg.max_factor}], "
                                 f"got {cfg.factor!r}")
            if cfg.factor * cfg.low_min_mhz > cfg.high_mhz[1]:
                raise ValueError(f"patches.factor {cfg.factor}: no target field in high_mhz {list(cfg.high_mhz)} "
                                 f"has an input field >= low_min_mhz {cfg.low_min_mhz}")
            object.__setattr__(cfg, "factor", float(cfg.factor))
        if cfg.lw_1h_hz[0] <= 0:
            raise ValueError(f"patches.lw_1h_hz must start above 0 Hz, got {list(cfg.lw_1h_hz)}")
        return cfg


def draw_fields(rng: np.random.Generator, cfg: PatchConfig) -> tuple[float, float]:
    """(B_high, B_low) in MHz: B_high uniform, ln f uniform in [0, ln f_max(B_high)].

    With ``cfg.factor`` set, B_high is uniform over the targets whose input ``B_high / factor`` is
    at least ``low_min_mhz``, and ``B_low = B_high / factor``.
    """
    if cfg.factor is not None:
        high = float(rng.uniform(max(cfg.high_mhz[0], cfg.factor * cfg.low_min_mhz), cfg.high_mhz[1]))
        return high, high / cfg.factor
    high = float(rng.uniform(*cfg.high_mhz))
    f_max = min(cfg.max_factor, high / cfg.low_min_mhz)
    factor = math.exp(rng.uniform(0.0, math.log(f_max)))
    return high, high / factor


def _draw_linewidths(rng: np.random.Generator, cfg: PatchConfig) -> dict:
    if rng.random() < cfg.trosy_fraction:
        p = dict(experiment="trosy", b_opt=rng.uniform(900, 1100), d=rng.uniform(10, 40), e=rng.uniform(3, 8))
    else:
        p = dict(experiment="hsqc", d=rng.uniform(3, 12), c=rng.uniform(0.5, 4.0))
    p["lw_1h"] = rng.uniform(*cfg.lw_1h_hz)
    return p


def _voigt_rows(centres: np.ndarray, sigma: float, gammas: np.ndarray, size: int) -> np.ndarray:
    """One area-normalized Voigt profile per peak on ``size`` points, shape (P, size)."""
    x = np.arange(size, dtype=np.float64)[None, :] - centres[:, None]
    return voigt_profile(x, max(sigma, 1e-6), gammas[:, None])


class PatchPairs(torch.utils.data.Dataset):
    """Low/high-field patch pairs drawn on access, keyed like :class:`mssr.model.train.DegradedPairs`.

    An item ``(stream, epoch, index)`` is ``(x0, x_lr, factor)``: the high-field patch (noise
    free) and the low-field patch, float32 (size, size), both in the network's unit
    (:func:`network_scale`), axis 0 15N and axis 1 1H; and ``f = B_high / B_low``. The item
    depends on its key only.

    Parameters
    ----------
    proteins : sequence of int
        BMRB ids whose shifts are drawn (the training split's proteins).
    cfg : PatchConfig
        What the pairs vary in.
    length : int
        Items per epoch.
    seed : int
        Base seed.
    refdb : DataFrame, optional
        Shift table (:func:`mssr.data.synthetic.load_refdb` when None).
    """

    def __init__(self, proteins, cfg: PatchConfig, *, length: int, seed: int, refdb=None):
        if not isinstance(cfg, PatchConfig):
            raise TypeError(f"cfg must be a PatchConfig, got {type(cfg).__name__}")
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"length must be a positive int, got {length!r}")
        table = synthetic.load_refdb() if refdb is None else refdb
        rng = np.random.default_rng([int(seed), 7])
        self.peaks = []
        self.proteins: list[int] = []
        for protein in proteins:
            peaks = synthetic.peak_list(synthetic.protein_table(table, int(protein)), "hsqc_15n", rng=rng)
            if len(peaks):
                self.peaks.append(peaks[["ppm_0", "ppm_1", "weight"]].to_numpy(dtype=np.float64))
                self.proteins.append(int(protein))
        if not self.peaks:
            raise ValueError("no protein with a 1H-15N peak list among the proteins given")
        self.cfg = cfg
        self.length = length
        self.seed = int(seed)

    def __len__(self) -> int:
        return self.length

    def _rng(self, key: tuple[int, int, int]) -> np.random.Generator:
        stream, epoch, index = key
        return np.random.default_rng([self.seed, int(stream), int(epoch), int(index)])

    def __getitem__(self, key: tuple[int, int, int]):
        return self.item(key)

    def item(self, key: tuple[int, int, int], *, info: dict | None = None):
        """The item ``key``; ``info`` as in :func:`render_patch`."""
        rng = self._rng(key)
        x0, x_lr, factor = render_patch(self.peaks[rng.integers(len(self.peaks))], self.cfg, rng, info=info)
        return x0, x_lr, factor

    def protein_of(self, key: tuple[int, int, int]) -> int:
        """The BMRB id whose peaks make the item ``key`` (its first draw)."""
        return self.proteins[int(self._rng(key).integers(len(self.peaks)))]


def render_patch(peaks: np.ndarray, cfg: PatchConfig, rng: np.random.Generator, *, raw: bool = False,
                 info: dict | None = None):
    """One training pair from a protein's peak list (rows: 15N ppm, 1H ppm, weight).

    Parameters
    ----------
    peaks : ndarray, shape (P, 3)
        15N ppm, 1H ppm and relative volume of each peak.
    cfg : PatchConfig
    rng : numpy Generator
    raw : bool
        Return the patches before scaling, and the drawn plane-to-patch ratio.
    info : dict, optional
        With ``cfg.anchor``, filled with the patch *with its margin* of ``margin`` points on each
        side (float32, network unit): ``low`` (the low-field patch itself), ``anchor`` (its
        deconvolution) and ``x0`` (the high-field truth), and with ``added_fwhm_px`` (the anchor's
        kernel widths, points): the data and kernel of :class:`mssr.model.anchor.Consistency`,
        whose periodic filter needs the margin as the anchor's deconvolution does.

    Returns
    -------
    x0, x_lr : ndarray, float32, shape (size, size)
        High-field (noise free) and low-field patch in the network's unit, ``x / (ratio *
        network_scale(x_lr))`` (float64 and unscaled with ``raw``).
    factor : float
        ``B_high / B_low``.
    ratio : float
        Only with ``raw``: the ratio of the plane's strongest low-field height to the patch's.
    """
    size = cfg.size
    high, low = draw_fields(rng, cfg)
    factor = high / low
    lw = _draw_linewidths(rng, cfg)
    spacing_hz = (working_spacing_hz("15N"), working_spacing_hz("1H"))
    ppm_per_px = (spacing_hz[0] / (high * GYROMAGNETIC_RATIO_TO_1H["15N"]), spacing_hz[1] / high)
    # 1. patch position: near a peak, or anywhere within the peaks' window
    if rng.random() < cfg.on_peak:
        centre = peaks[rng.integers(len(peaks)), :2] + rng.normal(0, 0.25, 2) * size * np.array(ppm_per_px)
    else:
        lo, hi = peaks[:, :2].min(axis=0), peaks[:, :2].max(axis=0)
        centre = rng.uniform(lo, hi)
    # point 0 is the highest ppm: index = (ppm_top - ppm) / spacing
    top = centre + np.array(ppm_per_px) * size / 2
    pos = (top[None, :] - peaks[:, :2]) / np.array(ppm_per_px)[None, :]
    weights = peaks[:, 2] * np.exp(rng.normal(0.0, 0.5, len(peaks)))
    n_extra = rng.poisson(cfg.extra_peaks)
    if n_extra:
        pos = np.vstack([pos, rng.uniform(-8, size + 8, (n_extra, 2))])
        weights = np.concatenate([weights, np.exp(rng.normal(-0.5, 0.8, n_extra))])
    margin = 40.0
    keep = np.all((pos > -margin) & (pos < size + margin), axis=1)
    pos, weights = pos[keep], weights[keep]
    signs = np.where(rng.random(len(weights)) < 0.05, -1.0, 1.0)
    volumes = signs * weights
    # 2. widths in working points: Lorentzian FWHM per peak, Gaussian (apodization) per axis
    scatter = np.exp(rng.normal(0.0, 0.2, (len(volumes), 2)))
    lw_high = np.array([linewidth_15n_hz(high, lw), lw["lw_1h"]])
    lw_low = np.array([linewidth_15n_hz(low, lw), lw["lw_1h"]])
    # Hz at B -> ppm -> working px; the grid spacing is in Hz at B_high, so px = Hz * (high / B) / spacing
    fw_high = scatter * lw_high[None, :] / np.array(spacing_hz)[None, :]
    fw_low = scatter * lw_low[None, :] * factor / np.array(spacing_hz)[None, :]
    fw_low = np.maximum(fw_low, fw_high)  # no blur narrows a line (see mssr.degrade)
    apod = np.array([rng.uniform(*cfg.apod_15n_hz), rng.uniform(*cfg.apod_1h_hz)]) / np.array(spacing_hz)
    sigma = apod / _FWHM_PER_SIGMA
    # the apodization is fixed in Hz too (the same acquisition time at both fields): f times wider in ppm
    sigma_low = sigma * factor
    # 3. draw both spectra: sum over peaks of outer products of 1D Voigt profiles (with a margin the
    #    anchor's deconvolution needs, cut off afterwards)
    pad = size // 2 if cfg.anchor else 0
    x_hr = _draw(pos + pad, volumes, sigma, fw_high / 2, size + 2 * pad)
    x_lr = _draw(pos + pad, volumes, sigma_low, fw_low / 2, size + 2 * pad)
    # 4. noise: high-field S/N of the strongest line; the low-field rule on a reference line
    med_high = np.median(fw_high, axis=0) if len(volumes) else lw_high / np.array(spacing_hz)
    ref_high = _reference_height(sigma, med_high / 2)
    ref_low = _reference_height(sigma_low, med_high * factor / 2)
    strongest = float(np.max(np.abs(x_hr[pad:pad + size, pad:pad + size]))) if len(volumes) else ref_high
    if strongest <= 0:
        strongest = ref_high
    snr = math.exp(rng.uniform(math.log(cfg.snr[0]), math.log(cfg.snr[1])))
    sigma_high = strongest / snr
    noise_low = ref_low / (ref_high / sigma_high / factor**1.5)
    x_lr = x_lr + noise_low * _unit_noise(rng, cfg.noise_corr_px, x_lr.shape)
    # 5. the network's unit, as if the plane's strongest peak were up to max_scale_ratio taller
    ratio = math.exp(rng.uniform(0.0, math.log(cfg.max_scale_ratio))) if rng.random() < 0.5 else 1.0
    inner = (slice(pad, pad + size), slice(pad, pad + size))
    if raw:
        return x_hr[inner], x_lr[inner], float(factor), ratio
    scale = network_scale(x_lr[inner]) * ratio
    if cfg.anchor:
        # 6. the anchor, with the kernel the estimator would find: (r f - 1) x the median high-field FWHM
        from mssr.model.anchor import TRAINING_JITTER, deconvolve

        high_fwhm = np.array([voigt_fwhm(sigma[k], med_high[k] / 2) for k in range(2)])
        rule = lw["experiment"] if cfg.anchor_rule == "experiment" else "fixed"
        ratio = np.array(width_ratio(rule, ("15N", "1H"), low, high))
        added = np.maximum(factor * ratio - 1.0, 0.0) * high_fwhm * np.exp(rng.normal(0.0, TRAINING_JITTER, 2))
        if info is not None:
            info["low"] = (x_lr / scale).astype(np.float32)
            info["added_fwhm_px"] = (float(added[0]), float(added[1]))
        x_lr = deconvolve(x_lr / scale, added) * scale
        if info is not None:
            info["x0"] = (x_hr / scale).astype(np.float32)
            info["anchor"] = (x_lr / scale).astype(np.float32)
            info["margin"] = pad
    return (x_hr[inner] / scale).astype(np.float32), (x_lr[inner] / scale).astype(np.float32), float(factor)


def _unit_noise(rng: np.random.Generator, corr_px: tuple[float, float], shape) -> np.ndarray:
    """Unit-SD Gaussian noise, white or smoothed by a Gaussian of SD drawn in ``corr_px`` per axis (points)."""
    white = rng.normal(0.0, 1.0, shape)
    if corr_px[1] <= 0:  # white noise: no further draw (keeps the stream of the white-noise configs)
        return white
    sd = rng.uniform(corr_px[0], corr_px[1], 2)
    if not np.any(sd > 0):
        return white
    smooth = ndimage.gaussian_filter(white, sd, mode="wrap")
    return smooth / smooth.std()


def voigt_fwhm(sigma: float, gamma: float) -> float:
    """FWHM (points) of a Voigt profile of Gaussian SD ``sigma`` and Lorentzian HWHM ``gamma`` (points).

    Olivero and Longbothum (1977), accurate to 0.02%.
    """
    f_g = _FWHM_PER_SIGMA * float(sigma)
    f_l = 2.0 * float(gamma)
    return 0.5346 * f_l + math.sqrt(0.2166 * f_l**2 + f_g**2)


def _draw(pos: np.ndarray, volumes: np.ndarray, sigma: np.ndarray, gammas: np.ndarray, size: int) -> np.ndarray:
    if not len(volumes):
        return np.zeros((size, size))
    rows = _voigt_rows(pos[:, 0], sigma[0], gammas[:, 0], size)
    cols = _voigt_rows(pos[:, 1], sigma[1], gammas[:, 1], size)
    return np.einsum("p,pi,pj->ij", volumes, rows, cols)


def _reference_height(sigma: np.ndarray, gamma: np.ndarray) -> float:
    """Peak height of a unit-volume 2D Voigt line (per-axis Gaussian sigma, Lorentzian HWHM, px)."""
    return float(voigt_profile(0.0, max(sigma[0], 1e-6), gamma[0]) * voigt_profile(0.0, max(sigma[1], 1e-6), gamma[1]))


__all__ = ["NETWORK_HEADROOM", "PatchConfig", "PatchPairs", "draw_fields", "network_scale",
           "render_patch", "voigt_fwhm"]
