"""Denoising diffusion: noise schedule, training loss and samplers for MSSR.

The math only: nothing here knows a file format or a network. The network enters as a callable
``predict_fn(x_t, x_lr, t, factors) -> eps`` (for instance :class:`mssr.model.network.NoisePredictor`).

Forward process (DDPM, Ho et al. 2020, eq. 4): ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``
with ``abar_t = prod_{s<=t} (1 - beta_s)``, t = 0..T-1. The model is trained to predict ``eps``
(MSSR eq. 5). Sampling follows the paper's protocol by default: the T-step model is sampled with
``steps`` respaced ancestral DDPM steps starting at t = T-1, ``repeats`` independent samples per
spectrum are averaged, and their per-pixel standard deviation is the uncertainty map.

Spectra are float tensors of shape (N, 1, H, W) in [-1, 1].
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Literal, get_args

import numpy as np
import torch

from mssr import _validate
from mssr.factors import factors_on_host
from mssr.model import SAMPLERS, Sampler

Schedule = Literal["linear", "scaled_linear", "cosine"]
Prediction = Literal["epsilon", "residual"]

PredictFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""``predict_fn(x_t, x_lr, t, factors) -> out``: x_t, x_lr (B, 1, H, W), t int64 (B,) on their
device, factors float64 (B,) on the CPU; returns (B, 1, H, W): the noise eps, or ``x0 - x_lr``
for ``prediction='residual'`` (:class:`DiffusionConfig`)."""

_AUTOCAST_DTYPES = (torch.bfloat16, torch.float16)


@dataclass(frozen=True)
class DiffusionConfig:
    """Noise schedule of the diffusion model.

    Attributes
    ----------
    timesteps : int
        Number of training timesteps T. MSSR uses 2000; DDPM used 1000.
    schedule : {'linear', 'scaled_linear', 'cosine'}
        ``'linear'``: beta linear from ``beta_start`` to ``beta_end`` (DDPM).
        ``'scaled_linear'``: sqrt(beta) linear (latent diffusion).
        ``'cosine'``: Nichol & Dhariwal's ``abar(t) = cos^2((t/T + 0.008)/1.008 * pi/2)``, betas
        capped at 0.999 (diffusers ``'squaredcos_cap_v2'``); ignores ``beta_start``/``beta_end``.
    beta_start, beta_end : float
        First and last beta of the linear schedules. DDPM's values, 1e-4 and 0.02, are the
        defaults; the MSSR paper states T but not the betas.
    prediction : {'epsilon', 'residual'}
        What the network predicts. ``'epsilon'``: the noise (MSSR eq. 5), trained on the noise MSE.
        ``'residual'``: the clean spectrum's difference from the low-field input, ``x0 - x_lr``
        (an x0 parameterization, as in conditional restoration diffusion models; zero output is
        the identity), trained on the x0 MSE of each spectrum relative to its input's squared
        maximum, so a weak tile counts as much as a strong one. The native-resolution model uses
        it: its spectra are small against the unit noise at almost every t, where an epsilon
        network's x0 error is its noise error times sigma_t / alpha_t.
    """

    timesteps: int = 2000
    schedule: Schedule = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    prediction: Prediction = "epsilon"

    def __post_init__(self):
        _validate_diffusion_config(self)

    @classmethod
    def from_dict(cls, d: dict) -> DiffusionConfig:
        """Build a config from a mapping; missing keys take the defaults.

        Raises
        ------
        ValueError
            If ``d`` has a key that is not a field (the key is named) or a value is out of range.
        """
        return _validate.dataclass_from_mapping(cls, d)

    def to_dict(self) -> dict:
        """JSON-ready dict of every field."""
        return dataclasses.asdict(self)


def _validate_diffusion_config(cfg: DiffusionConfig) -> None:
    if isinstance(cfg.timesteps, bool) or not isinstance(cfg.timesteps, int):
        raise TypeError(f"DiffusionConfig.timesteps must be an int, got {type(cfg.timesteps).__name__}")
    if cfg.timesteps < 2:
        raise ValueError(f"DiffusionConfig.timesteps must be >= 2, got {cfg.timesteps}")
    if cfg.schedule not in get_args(Schedule):
        raise ValueError(f"DiffusionConfig.schedule must be one of {get_args(Schedule)}, got {cfg.schedule!r}")
    if cfg.prediction not in get_args(Prediction):
        raise ValueError(f"DiffusionConfig.prediction must be one of {get_args(Prediction)}, got {cfg.prediction!r}")
    for name in ("beta_start", "beta_end"):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"DiffusionConfig.{name} must be a float, got {type(value).__name__}")
    if not 0.0 < cfg.beta_start < cfg.beta_end < 1.0:
        raise ValueError(
            f"DiffusionConfig needs 0 < beta_start < beta_end < 1, got {cfg.beta_start} and {cfg.beta_end}"
        )


def make_betas(cfg: DiffusionConfig) -> np.ndarray:
    """The betas of ``cfg``, float64, shape (T,)."""
    T = cfg.timesteps
    if cfg.schedule == "linear":
        return np.linspace(cfg.beta_start, cfg.beta_end, T, dtype=np.float64)
    if cfg.schedule == "scaled_linear":
        return np.linspace(math.sqrt(cfg.beta_start), math.sqrt(cfg.beta_end), T, dtype=np.float64) ** 2
    # Cosine schedule (improved DDPM eq. 17), discretized as betas with the 0.999 cap of diffusers.
    steps = np.arange(T + 1, dtype=np.float64) / T
    alpha_bar = np.cos((steps + 0.008) / 1.008 * math.pi / 2) ** 2
    return np.minimum(1.0 - alpha_bar[1:] / alpha_bar[:-1], 0.999)


def _validate_timesteps(t, batch: int, T: int, device) -> torch.Tensor:
    if isinstance(t, bool):
        raise TypeError("t must be an int or an integer torch.Tensor, got bool")
    if isinstance(t, int):
        if not 0 <= t < T:
            raise ValueError(f"t must be in [0, {T - 1}], got {t}")
        return torch.full((batch,), t, dtype=torch.int64, device=device)
    if not isinstance(t, torch.Tensor) or t.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"t must be an int or an integer torch.Tensor, got {getattr(t, 'dtype', type(t).__name__)}")
    if t.shape != (batch,):
        raise ValueError(f"t must have shape ({batch},), got {tuple(t.shape)}")
    # Range checked only where it costs no host-device synchronization.
    if t.device.type == "cpu" and batch and (int(t.min()) < 0 or int(t.max()) >= T):
        raise ValueError(f"t must be in [0, {T - 1}], got values in [{int(t.min())}, {int(t.max())}]")
    return t.to(device)


def _validate_spectra(name: str, x, *, like: torch.Tensor | None = None) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"{name} must have shape (N, 1, H, W), got {tuple(x.shape)}")
    if like is not None and (x.shape != like.shape or x.device != like.device):
        raise ValueError(
            f"{name} must match x0 in shape and device: {tuple(x.shape)} on {x.device} vs "
            f"{tuple(like.shape)} on {like.device}"
        )


def _validate_generator(generator, device: torch.device) -> None:
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if generator.device.type != device.type:
        raise ValueError(
            f"generator lives on {generator.device.type} but the spectra on {device.type}; "
            f"create it with torch.Generator(device='{device.type}')"
        )


class Diffusion:
    """The diffusion process of a :class:`DiffusionConfig`: forward noising, loss and samplers.

    Parameters
    ----------
    config : DiffusionConfig

    Attributes
    ----------
    config : DiffusionConfig
    betas : torch.Tensor
        float64, shape (T,), on the CPU.
    alphas_cumprod : torch.Tensor
        ``abar_t``, float64, shape (T,), on the CPU: the single source of the schedule for
        training. The samplers (diffusers schedulers) get the same betas and recompute the
        cumulative product in float32; the two agree to 4.2e-7 (relative) for T = 2000 linear.
    """

    def __init__(self, config: DiffusionConfig):
        if not isinstance(config, DiffusionConfig):
            raise TypeError(f"config must be a DiffusionConfig, got {type(config).__name__}")
        self.config = config
        betas = make_betas(config)
        self.betas = torch.from_numpy(betas)
        self.alphas_cumprod = torch.from_numpy(np.cumprod(1.0 - betas))
        self._coefficients: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def timesteps(self) -> int:
        """T, the number of training timesteps."""
        return self.config.timesteps

    def _coefficients_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        # Cached per device so the training loop does not copy the table to the device every step.
        if device not in self._coefficients:
            self._coefficients[device] = (
                self.alphas_cumprod.sqrt().to(device),
                (1.0 - self.alphas_cumprod).sqrt().to(device),
            )
        return self._coefficients[device]

    # ---------------------------------------------------------------- forward process and loss

    def q_sample(self, x0: torch.Tensor, t, noise: torch.Tensor) -> torch.Tensor:
        """Noise clean spectra to timestep ``t`` (DDPM eq. 4).

        Parameters
        ----------
        x0 : torch.Tensor
            Clean spectra, shape (N, 1, H, W).
        t : int or torch.Tensor
            One timestep for all, or int64 shape (N,), each in [0, T-1].
        noise : torch.Tensor
            Standard normal noise, same shape and device as ``x0``.

        Returns
        -------
        torch.Tensor
            ``sqrt(abar_t) x0 + sqrt(1 - abar_t) noise``, in the dtype of ``x0``.
        """
        _validate_spectra("x0", x0)
        _validate_spectra("noise", noise, like=x0)
        t = _validate_timesteps(t, x0.shape[0], self.timesteps, x0.device)
        sqrt_abar, sqrt_one_minus_abar = self._coefficients_on(x0.device)
        a = sqrt_abar[t].to(x0.dtype).view(-1, 1, 1, 1)
        s = sqrt_one_minus_abar[t].to(x0.dtype).view(-1, 1, 1, 1)
        return a * x0 + s * noise

    def training_loss(
        self,
        predict_fn: PredictFn,
        x0: torch.Tensor,
        x_lr: torch.Tensor,
        factors,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The training loss at t uniform in [0, T-1]: MSE of the noise (MSSR eq. 5) or, for
        ``prediction='residual'``, of x0 relative to ``max|x_lr|^2`` per spectrum.

        Draws, in this order from ``generator``: ``t = randint(0, T, (N,))``, then
        ``noise = randn(x0.shape)``.

        Parameters
        ----------
        predict_fn : callable
            ``predict_fn(x_t, x_lr, t, factors) -> eps``.
        x0 : torch.Tensor
            Clean high-field spectra, shape (N, 1, H, W).
        x_lr : torch.Tensor
            Low-field spectra, same shape and device.
        factors : torch.Tensor or sequence of float
            Upscaling factor of each spectrum, shape (N,); handed to ``predict_fn`` as float64
            on the CPU.
        generator : torch.Generator, optional
            On the device of ``x0``.

        Returns
        -------
        torch.Tensor
            Scalar float32 loss, differentiable.
        """
        _validate_spectra("x0", x0)
        _validate_spectra("x_lr", x_lr, like=x0)
        factors = factors_on_host(factors, x0.shape[0])
        _validate_generator(generator, x0.device)
        t = torch.randint(0, self.timesteps, (x0.shape[0],), generator=generator, device=x0.device)
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = self.q_sample(x0, t, noise)
        out = predict_fn(x_t, x_lr, t, factors)
        if out.shape != x0.shape:
            raise ValueError(f"predict_fn returned shape {tuple(out.shape)}, expected {tuple(x0.shape)}")
        if self.config.prediction == "epsilon":
            return torch.nn.functional.mse_loss(out.float(), noise.float())
        error = (x_lr.float() + out.float() - x0.float()).pow(2).mean(dim=(1, 2, 3))
        peak = x_lr.float().abs().amax(dim=(1, 2, 3)).clamp_min(1e-12)
        return (error / peak.pow(2)).mean()

    # ---------------------------------------------------------------- samplers

    def make_scheduler(self, sampler: Sampler, steps: int):
        """The diffusers scheduler of ``sampler`` with ``steps`` inference steps set.

        All three get this process's betas and predict epsilon, without their own clipping
        (:meth:`sample` clamps the x0 prediction itself, the same way for every sampler).

        ``'ddpm'``
            ``DDPMScheduler``, ancestral, posterior variance ("fixed_small"), timesteps
            ``'trailing'``: they start at T-1 (the default ``'leading'`` never does) and step
            T/steps apart; the last model call is at t = T/steps - 1 and its step lands on the
            clean spectrum.
        ``'ddim'``
            ``DDIMScheduler``, eta = 0 (deterministic), ``'trailing'``. diffusers takes the
            previous timestep as ``t - T // steps``, which matches the trailing schedule only
            when ``steps`` divides T, so other step counts are refused.
        ``'dpmsolver'``
            ``DPMSolverMultistepScheduler``, DPM-Solver++ (2nd order, multistep) with timesteps
            uniform in log-SNR (``use_lu_lambdas``, Lu et al. 2022) and a last step to sigma = 0.
            On a Gaussian test distribution with the exact denoiser (T = 2000 linear) its error
            at 10/20/50 steps is 4-8e-3 / 3-4e-3 / 1-3e-3 RMS, against 1e-2-1.3e-1 / 9e-3-7.7e-2 /
            9e-3-2.4e-2 with trailing timesteps: uniform spacing makes the last jump from
            t = T/steps - 1 (sigma ~ 0.4 at 10 steps). Rounded log-SNR timesteps repeat beyond
            some step count (62 for T = 2000 linear); such counts are refused.

        Parameters
        ----------
        sampler : {'ddpm', 'ddim', 'dpmsolver'}
        steps : int
            Number of network evaluations, 1..T.

        Returns
        -------
        diffusers scheduler
            With its timesteps on the CPU.
        """
        _validate.choice("sampler", sampler, SAMPLERS)
        _validate.positive_int("steps", steps)
        T = self.timesteps
        if steps > T:
            raise ValueError(f"steps must be <= T = {T}, got {steps}")
        common = dict(num_train_timesteps=T, trained_betas=self.betas.numpy(), prediction_type="epsilon")
        if sampler == "ddpm":
            from diffusers import DDPMScheduler

            scheduler = DDPMScheduler(
                **common, variance_type="fixed_small", clip_sample=False, thresholding=False,
                timestep_spacing="trailing",
            )
        elif sampler == "ddim":
            if T % steps:
                raise ValueError(
                    f"steps={steps} does not divide T={T}: diffusers' DDIM step to t - T // steps would "
                    "not follow the trailing timesteps; choose a divisor of T or sampler='dpmsolver'"
                )
            from diffusers import DDIMScheduler

            scheduler = DDIMScheduler(
                **common, clip_sample=False, thresholding=False, set_alpha_to_one=True,
                timestep_spacing="trailing",
            )
        else:
            from diffusers import DPMSolverMultistepScheduler

            scheduler = DPMSolverMultistepScheduler(
                **common, algorithm_type="dpmsolver++", solver_order=2, solver_type="midpoint",
                thresholding=False, use_lu_lambdas=True, final_sigmas_type="zero", lower_order_final=True,
            )
        scheduler.set_timesteps(steps)
        timesteps = scheduler.timesteps.tolist()
        if len(set(timesteps)) != len(timesteps):
            raise ValueError(
                f"steps={steps} gives repeated timesteps for sampler={sampler!r} with T={T} "
                f"({self.config.schedule}); use fewer steps"
            )
        return scheduler

    def schedule_timesteps(self, sampler: Sampler, steps: int, *, start_step: int | None = None) -> list[int]:
        """The timesteps at which :meth:`sample` calls the network, in order.

        Parameters
        ----------
        sampler : {'ddpm', 'ddim', 'dpmsolver'}
        steps : int
            Steps of the full schedule.
        start_step : int, optional
            Keep only the timesteps <= ``start_step`` (see :meth:`sample`).

        Returns
        -------
        list of int
            Strictly decreasing.
        """
        timesteps = self.make_scheduler(sampler, steps).timesteps.tolist()
        return timesteps[self._begin_index(timesteps, start_step):]

    def _begin_index(self, timesteps: list[int], start_step) -> int:
        if start_step is None:
            return 0
        if isinstance(start_step, bool) or not isinstance(start_step, int):
            raise TypeError(f"start_step must be an int, got {type(start_step).__name__}")
        if not 0 <= start_step < self.timesteps:
            raise ValueError(f"start_step must be in [0, {self.timesteps - 1}], got {start_step}")
        kept = [i for i, t in enumerate(timesteps) if t <= start_step]
        if not kept:
            raise ValueError(
                f"start_step={start_step} is below every timestep of the schedule (smallest {timesteps[-1]})"
            )
        return kept[0]

    def sample(
        self,
        predict_fn: PredictFn,
        x_lr: torch.Tensor,
        factors,
        *,
        sampler: Sampler = "ddpm",
        steps: int = 500,
        repeats: int = 5,
        batch_size: int = 64,
        start_step: int | None = None,
        generator: torch.Generator | None = None,
        progress: bool = True,
        autocast_dtype: torch.dtype | None = None,
        project_x0: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Super-resolve spectra: ``repeats`` samples each, their mean and per-pixel std.

        All N x repeats chains advance together, one scheduler step for the whole stack per
        timestep; the network is called on consecutive chunks of ``batch_size`` chains. The
        stack is spectrum-major (chain ``n * repeats + r``).

        Algorithm (timesteps from :meth:`make_scheduler`, on the CPU, as Python ints, so the loop
        never waits for the device):

        1. ``z = randn((N * repeats, 1, H, W))`` from ``generator``, the first draw;
           ``x = z``, or ``x = q_sample(x_lr, t_0, z)`` with ``start_step``.
        2. For each timestep t: ``eps = predict_fn(x, x_lr, t, factors)`` chunk by chunk,
           under autocast if asked, cast to float32 (``prediction='residual'``: the network's
           ``x0 - x_lr``, so ``x0 = x_lr + out``).
        3. Clamp the x0 prediction ``(x - sigma_t eps) / alpha_t`` to [-1, 1] (and project it with
           ``project_x0`` if given), then step with the noise it implies,
           ``eps = (x - alpha_t x0) / sigma_t`` (for an unprojected x0 predicted from eps: eps
           shifted by ``alpha_t / sigma_t * (x0 - clamp(x0))``, the same). diffusers' DPM-Solver has no
           ``clip_sample``; its dynamic thresholding with ``sample_max_value=1`` clamps the same
           way but sorts every spectrum at every step to find a quantile it then ignores. One
           rule, here, for all three samplers. ``'residual'``: the clamped ``x0`` gives
           ``eps = (x - alpha_t x0) / sigma_t``.
        4. ``x = scheduler.step(eps, t, x)``; DDPM draws its ancestral noise for the whole stack
           from ``generator``.
        5. Clamp to [-1, 1]; mean and std (ddof = 0) over the repeats.

        Random draws are made for the whole stack, never per chunk, so ``batch_size`` changes
        memory use and speed but not the noise: results differ only by the network's own
        batch-size-dependent rounding (none for an elementwise predictor).

        Parameters
        ----------
        predict_fn : callable
            ``predict_fn(x_t, x_lr, t, factors) -> eps``; receives float32 spectra, int64 t of
            shape (B,) on the device of ``x_lr``, and float64 factors (B,) on the CPU. Put a
            network in eval mode first (dropout); the sampler runs under ``torch.inference_mode``.
        x_lr : torch.Tensor
            Low-field spectra, shape (N, 1, H, W), in [-1, 1], on the device to sample on.
        factors : torch.Tensor or sequence of float
            Upscaling factor of each spectrum, shape (N,).
        sampler : {'ddpm', 'ddim', 'dpmsolver'}
            See :meth:`make_scheduler`. The paper's protocol is ``'ddpm'`` with 500 steps.
        steps : int
            Steps of the full schedule (network evaluations without ``start_step``).
        repeats : int
            Independent samples per spectrum.
        batch_size : int
            Chains per network call.
        start_step : int, optional
            Noise injection (a training timestep in [0, T-1]): start from ``x_lr`` noised to the
            first schedule timestep <= ``start_step`` and run only the steps from there.
        generator : torch.Generator, optional
            On the device of ``x_lr``; the same seed gives the same result on that device.
        progress : bool
            Show a tqdm progress bar over the timesteps.
        autocast_dtype : torch.dtype, optional
            ``torch.bfloat16`` or ``torch.float16`` to run ``predict_fn`` under
            ``torch.autocast``; the scheduler math stays float32.
        project_x0 : callable, optional
            ``project_x0(x0) -> x0``, applied to the clamped x0 prediction of the whole stack at
            every step before the scheduler step (a data-consistency projection,
            :class:`mssr.model.anchor.Consistency`); the step then uses the noise that projected
            x0 implies.

        Returns
        -------
        mean, std : torch.Tensor
            Shape (N, 1, H, W), dtype of ``x_lr``, on its device: the mean of the repeats (the
            super-resolved spectrum) and their per-pixel standard deviation (ddof = 0; zeros
            for ``repeats=1``).

        Notes
        -----
        Memory: a few float32 tensors of N x repeats x H x W on the device (DPM-Solver keeps two
        more); sample large test sets in blocks of spectra.
        """
        _validate_spectra("x_lr", x_lr)
        n, _, height, width = x_lr.shape
        factors = factors_on_host(factors, n)
        _validate.positive_int("repeats", repeats)
        _validate.positive_int("batch_size", batch_size)
        device = x_lr.device
        _validate_generator(generator, device)
        if autocast_dtype is not None and autocast_dtype not in _AUTOCAST_DTYPES:
            raise ValueError(f"autocast_dtype must be None or one of {_AUTOCAST_DTYPES}, got {autocast_dtype}")
        scheduler = self.make_scheduler(sampler, steps)
        timesteps = scheduler.timesteps.tolist()
        begin = self._begin_index(timesteps, start_step)
        alphas, sigmas = self._step_coefficients(scheduler, sampler, timesteps)
        if sampler == "dpmsolver":
            scheduler.set_begin_index(begin)

        from tqdm.auto import tqdm

        chains = n * repeats
        with torch.inference_mode():
            x_lr_stack = x_lr.to(torch.float32).repeat_interleave(repeats, dim=0)
            factors_stack = factors.repeat_interleave(repeats)
            # 1. Initial noise for the whole stack, drawn once, so chunking cannot change it.
            z = torch.randn((chains, 1, height, width), generator=generator, device=device, dtype=torch.float32)
            x = z if start_step is None else self.q_sample(x_lr_stack, timesteps[begin], z)
            eps = torch.empty_like(x)
            autocast = (
                torch.autocast(device_type=device.type, dtype=autocast_dtype)
                if autocast_dtype is not None else contextlib.nullcontext()
            )
            for k in tqdm(range(begin, len(timesteps)), desc=f"{sampler} sampling", unit="step",
                          disable=not progress):
                t = timesteps[k]
                # 2. Noise prediction, chunk by chunk.
                for start in range(0, chains, batch_size):
                    stop = min(start + batch_size, chains)
                    size = stop - start
                    t_model = torch.full((size,), t, dtype=torch.int64, device=device)
                    with autocast:
                        out = predict_fn(x[start:stop], x_lr_stack[start:stop], t_model, factors_stack[start:stop])
                    if out.shape != (size, 1, height, width):
                        raise ValueError(
                            f"predict_fn returned shape {tuple(out.shape)}, expected {(size, 1, height, width)}"
                        )
                    eps[start:stop] = out
                # 3. Clamp the x0 prediction to [-1, 1] through eps.
                if self.config.prediction == "residual":
                    x0 = (x_lr_stack + eps).clamp(-1.0, 1.0)
                    step_eps = None
                else:
                    x0 = (x - sigmas[k] * eps) / alphas[k]
                    step_eps = eps + (alphas[k] / sigmas[k]) * (x0 - x0.clamp(-1.0, 1.0))
                    x0 = x0.clamp(-1.0, 1.0)
                if project_x0 is not None:
                    x0 = project_x0(x0)
                    step_eps = None
                if step_eps is None:
                    step_eps = (x - alphas[k] * x0) / sigmas[k]
                # 4. One scheduler step for the whole stack.
                if sampler == "ddpm":
                    x = scheduler.step(step_eps, t, x, generator=generator).prev_sample
                elif sampler == "ddim":
                    x = scheduler.step(step_eps, t, x, eta=0.0).prev_sample
                else:
                    x = scheduler.step(step_eps, t, x).prev_sample
            # 5. Repeats -> mean and uncertainty.
            samples = x.clamp(-1.0, 1.0).view(n, repeats, 1, height, width)
            mean = samples.mean(dim=1)
            std = samples.std(dim=1, correction=0)
        return mean.to(x_lr.dtype), std.to(x_lr.dtype)

    @staticmethod
    def _step_coefficients(scheduler, sampler: Sampler, timesteps: list[int]) -> tuple[list[float], list[float]]:
        """(alpha_t, sigma_t) at each step, as the scheduler itself computes its x0 prediction."""
        if sampler == "dpmsolver":
            # DPM-Solver steps on its own sigmas (sigma = sqrt((1 - abar) / abar)), not on abar[t].
            ratios = scheduler.sigmas[: len(timesteps)].double()
            alphas = 1.0 / torch.sqrt(1.0 + ratios**2)
            return alphas.tolist(), (ratios * alphas).tolist()
        abar = scheduler.alphas_cumprod[timesteps].double()
        return abar.sqrt().tolist(), (1.0 - abar).sqrt().tolist()


__all__ = ["Diffusion", "DiffusionConfig", "PredictFn", "Sampler", "Schedule", "make_betas"]
