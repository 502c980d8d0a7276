"""Tests of mssr.model.diffusion: schedules, forward process, loss and the three samplers.

The samplers are checked with exact noise predictors ("oracles") built from known data:
a fixed clean spectrum per input (every sampler must return it) and a Gaussian data distribution,
for which the optimal denoiser, the probability-flow ODE and the moments of the discrete DDPM
chain are all known in closed form.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mssr.model.diffusion import Diffusion, DiffusionConfig, make_betas

torch.set_num_threads(2)

T = 2000


@pytest.fixture(scope="module")
def diffusion():
    return Diffusion(DiffusionConfig(timesteps=T))


def abar_linear(T=T, beta_start=1e-4, beta_end=0.02):
    """abar_t for the linear schedule, through exp(sum(log(1 - beta)))."""
    betas = beta_start + (beta_end - beta_start) * np.arange(T) / (T - 1)
    return np.exp(np.cumsum(np.log1p(-betas)))


# --------------------------------------------------------------------------------- oracles


def fixed_target(x_lr, factors):
    """A clean spectrum determined by each input, with values beyond [-1, 1] to exercise clamping."""
    return 1.6 * x_lr + 0.2 * (factors.view(-1, 1, 1, 1).to(x_lr.dtype) - 1.5)


def fixed_oracle(abar):
    abar = torch.as_tensor(abar, dtype=torch.float64)

    def predict(x_t, x_lr, t, factors):
        a = abar[t.cpu()].sqrt().view(-1, 1, 1, 1)
        s = (1 - abar[t.cpu()]).sqrt().view(-1, 1, 1, 1)
        return ((x_t.double() - a * fixed_target(x_lr.double(), factors)) / s).to(x_t.dtype)

    return predict


MU = 0.1
V_LARGE, V_SMALL = 0.0225, 1e-4  # per-pixel data variances (std 0.15 and 0.01)


def gaussian_variances(h):
    small = (torch.arange(h * h).view(h, h) % 2) == 0
    return small, torch.where(small, V_SMALL, V_LARGE).to(torch.float64).view(1, 1, h, h)


def gaussian_oracle(abar, h):
    """Exact eps predictor for x0 ~ N(MU, v) independently per pixel."""
    abar = torch.as_tensor(abar, dtype=torch.float64)
    _, v = gaussian_variances(h)

    def predict(x_t, x_lr, t, factors):
        a = abar[t.cpu()].sqrt().view(-1, 1, 1, 1)
        s2 = (1 - abar[t.cpu()]).view(-1, 1, 1, 1)
        x0 = MU + a * v / (a * a * v + s2) * (x_t.double() - a * MU)
        return ((x_t.double() - a * x0) / s2.sqrt()).to(x_t.dtype)

    return predict


def trailing(T, steps):
    return np.round(np.arange(T, 0, -T / steps)).astype(int) - 1


def ddpm_chain_moments(abar, steps, v):
    """Mean and variance of the respaced DDPM chain's output for Gaussian data (DDPM eqs. 6-7)."""
    ts = trailing(len(abar), steps)
    mean, var = 0.0, 1.0
    for i, t in enumerate(ts):
        abar_prev = abar[ts[i + 1]] if i + 1 < len(ts) else 1.0
        a, s2 = math.sqrt(abar[t]), 1 - abar[t]
        gain = a * v / (a * a * v + s2)  # x0_hat = MU + gain (x_t - a MU)
        beta = 1 - abar[t] / abar_prev
        c0 = math.sqrt(abar_prev) * beta / s2
        c1 = math.sqrt(1 - beta) * (1 - abar_prev) / s2
        posterior_var = (1 - abar_prev) / s2 * beta
        slope = c0 * gain + c1
        mean = slope * mean + c0 * MU * (1 - gain * a)
        var = slope * slope * var + posterior_var
    return mean, var


def ddim_chain(abar, steps, z, v):
    """The DDIM (eta = 0) chain for Gaussian data, as a per-pixel affine map of the start noise z."""
    ts = trailing(len(abar), steps)
    x = z.double()
    for i, t in enumerate(ts):
        abar_prev = abar[ts[i + 1]] if i + 1 < len(ts) else 1.0
        a, s = math.sqrt(abar[t]), math.sqrt(1 - abar[t])
        x0 = MU + a * v / (a * a * v + s * s) * (x - a * MU)
        eps = (x - a * x0) / s
        x = math.sqrt(abar_prev) * x0 + math.sqrt(1 - abar_prev) * eps
    return x


def seeded(seed):
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------- config


def test_config_round_trip_and_defaults():
    cfg = DiffusionConfig(timesteps=1000, schedule="cosine")
    assert DiffusionConfig.from_dict(cfg.to_dict()) == cfg
    assert DiffusionConfig.from_dict({}) == DiffusionConfig(timesteps=2000, schedule="linear", beta_start=1e-4,
                                                            beta_end=0.02, prediction="epsilon")


def test_config_rejects_unknown_key_by_name():
    with pytest.raises(ValueError, match="beta_max"):
        DiffusionConfig.from_dict({"beta_max": 0.02})


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"timesteps": 1}, ValueError),
        ({"timesteps": 2.5}, TypeError),
        ({"schedule": "sigmoid"}, ValueError),
        ({"prediction": "v_prediction"}, ValueError),
        ({"beta_start": 0.03}, ValueError),
        ({"beta_end": 1.5}, ValueError),
    ],
)
def test_config_rejects_bad_values(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        DiffusionConfig(**kwargs)


# --------------------------------------------------------------------------------- schedules


def test_linear_alphas_cumprod_matches_closed_form(diffusion):
    assert diffusion.alphas_cumprod.dtype == torch.float64
    np.testing.assert_allclose(diffusion.alphas_cumprod.numpy(), abar_linear(), rtol=1e-12)


@pytest.mark.parametrize("schedule, diffusers_name", [("linear", "linear"), ("scaled_linear", "scaled_linear"),
                                                      ("cosine", "squaredcos_cap_v2")])
def test_schedules_match_diffusers(schedule, diffusers_name):
    from diffusers import DDPMScheduler

    cfg = DiffusionConfig(timesteps=1000, schedule=schedule, beta_start=1e-4, beta_end=0.02)
    reference = DDPMScheduler(num_train_timesteps=1000, beta_schedule=diffusers_name, beta_start=1e-4,
                              beta_end=0.02).alphas_cumprod.double().numpy()
    np.testing.assert_allclose(Diffusion(cfg).alphas_cumprod.numpy(), reference, rtol=2e-5, atol=1e-9)


def test_cosine_schedule_is_the_cosine_formula():
    T_cos = 1000
    abar = Diffusion(DiffusionConfig(timesteps=T_cos, schedule="cosine")).alphas_cumprod.numpy()
    f = lambda t: np.cos((t / T_cos + 0.008) / 1.008 * np.pi / 2) ** 2  # noqa: E731
    t = np.arange(T_cos - 10)  # the last betas are capped at 0.999
    np.testing.assert_allclose(abar[t], f(t + 1) / f(0), rtol=1e-9)
    assert make_betas(DiffusionConfig(timesteps=T_cos, schedule="cosine")).max() == pytest.approx(0.999)


# --------------------------------------------------------------------------------- forward process


def test_q_sample_is_the_closed_form(diffusion):
    g = seeded(0)
    x0 = torch.rand(5, 1, 4, 6, generator=g) * 2 - 1
    noise = torch.randn(5, 1, 4, 6, generator=g)
    t = torch.tensor([0, 1, 999, 1500, 1999])
    abar = abar_linear()[t.numpy()].reshape(-1, 1, 1, 1)
    expected = np.sqrt(abar) * x0.numpy() + np.sqrt(1 - abar) * noise.numpy()
    x_t = diffusion.q_sample(x0, t, noise)
    assert x_t.dtype == torch.float32
    np.testing.assert_allclose(x_t.numpy(), expected, rtol=1e-5, atol=1e-6)
    x_t64 = diffusion.q_sample(x0.double(), 999, noise.double())
    assert x_t64.dtype == torch.float64
    np.testing.assert_allclose(x_t64.numpy(), np.sqrt(abar[2]) * x0.numpy() + np.sqrt(1 - abar[2]) * noise.numpy(),
                               rtol=1e-6)


def test_q_sample_statistics(diffusion):
    g = seeded(1)
    x0 = torch.full((4000, 1, 2, 2), 0.5, dtype=torch.float64)
    noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    x_t = diffusion.q_sample(x0, 700, noise)
    abar = abar_linear()[700]
    n = x_t.numel()
    assert abs(x_t.mean().item() - 0.5 * math.sqrt(abar)) < 5 * math.sqrt((1 - abar) / n)
    assert x_t.var().item() == pytest.approx(1 - abar, rel=5 * math.sqrt(2 / n))


def test_q_sample_rejects_out_of_range_t(diffusion):
    x0 = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError, match="t must be in"):
        diffusion.q_sample(x0, torch.tensor([0, T]), torch.zeros_like(x0))
    with pytest.raises(TypeError, match="t must be"):
        diffusion.q_sample(x0, torch.tensor([0.0, 1.0]), torch.zeros_like(x0))


# --------------------------------------------------------------------------------- training loss


def test_training_loss_equals_hand_computation(diffusion):
    g = seeded(2)
    x0 = torch.rand(6, 1, 8, 8, generator=g) * 2 - 1
    x_lr = torch.rand(6, 1, 8, 8, generator=g) * 2 - 1
    factors = [1.5, 2.25, 1.125, 2.0, 1.5, 1.8]
    seen = {}

    def predictor(x_t, x_lr_, t, f):
        seen["factors"] = f
        return 0.3 * x_t - 0.1 * x_lr_ + 0.01 * f.view(-1, 1, 1, 1).float()

    loss = diffusion.training_loss(predictor, x0, x_lr, factors, generator=seeded(42))
    # The documented draw order: t first, then the noise.
    replay = seeded(42)
    t = torch.randint(0, T, (6,), generator=replay).numpy()
    noise = torch.randn(x0.shape, generator=replay).numpy().astype(np.float64)
    abar = abar_linear()[t].reshape(-1, 1, 1, 1)
    x_t = np.sqrt(abar) * x0.numpy() + np.sqrt(1 - abar) * noise
    eps = 0.3 * x_t - 0.1 * x_lr.numpy() + 0.01 * np.array(factors).reshape(-1, 1, 1, 1)
    assert loss.dtype == torch.float32 and loss.ndim == 0
    assert loss.item() == pytest.approx(np.mean((eps - noise) ** 2), rel=1e-5)
    assert seen["factors"].dtype == torch.float64 and seen["factors"].device.type == "cpu"


def test_training_loss_is_differentiable(diffusion):
    weight = torch.nn.Parameter(torch.tensor(0.5))
    x0 = torch.zeros(2, 1, 4, 4)
    loss = diffusion.training_loss(lambda x_t, x_lr, t, f: weight * x_t, x0, x0, [1.5, 1.5], generator=seeded(0))
    loss.backward()
    assert weight.grad is not None and weight.grad.abs().item() > 0


def test_training_loss_rejects_mismatched_inputs(diffusion):
    x0 = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError, match="x_lr"):
        diffusion.training_loss(lambda *a: a[0], x0, torch.zeros(2, 1, 4, 5), [1.5, 1.5])
    with pytest.raises(ValueError, match="factors"):
        diffusion.training_loss(lambda *a: a[0], x0, x0, [1.5])
    with pytest.raises(ValueError, match="factors"):
        diffusion.training_loss(lambda *a: a[0], x0, x0, [1.5, 0.5])


# --------------------------------------------------------------------------------- timesteps


@pytest.mark.parametrize("sampler, steps", [("ddpm", 500), ("ddpm", 50), ("ddim", 50), ("ddim", 8)])
def test_respaced_schedule_is_trailing(diffusion, sampler, steps):
    timesteps = np.array(diffusion.schedule_timesteps(sampler, steps))
    assert len(timesteps) == steps
    assert timesteps[0] == T - 1
    assert np.all(np.diff(timesteps) < 0)
    np.testing.assert_array_equal(timesteps, trailing(T, steps))
    assert timesteps[-1] == T // steps - 1  # its step lands on the clean spectrum


def test_dpmsolver_schedule_is_uniform_in_log_snr(diffusion):
    scheduler = diffusion.make_scheduler("dpmsolver", 20)
    timesteps = scheduler.timesteps.numpy()
    assert timesteps[0] == T - 1 and timesteps[-1] == 0 and np.all(np.diff(timesteps) < 0)
    log_sigma = np.log(scheduler.sigmas[:-1].double().numpy())  # log sigma = -log-SNR / 2
    np.testing.assert_allclose(np.diff(log_sigma), np.diff(log_sigma).mean(), rtol=1e-4)
    abar = abar_linear()
    assert log_sigma[0] == pytest.approx(0.5 * np.log((1 - abar[-1]) / abar[-1]), rel=1e-5)
    assert scheduler.sigmas[-1] == 0


def test_start_step_keeps_the_tail_of_the_schedule(diffusion):
    full = diffusion.schedule_timesteps("ddpm", 500)
    tail = diffusion.schedule_timesteps("ddpm", 500, start_step=801)
    assert tail == [t for t in full if t <= 801] and tail[0] == 799
    with pytest.raises(ValueError, match="start_step"):
        diffusion.schedule_timesteps("ddpm", 500, start_step=T)
    with pytest.raises(ValueError, match="start_step"):
        diffusion.schedule_timesteps("ddpm", 50, start_step=10)  # below the last timestep, 39


def test_refused_step_counts(diffusion):
    with pytest.raises(ValueError, match="divide"):
        diffusion.make_scheduler("ddim", 300)
    with pytest.raises(ValueError, match="repeated timesteps"):
        diffusion.make_scheduler("dpmsolver", 62)
    with pytest.raises(ValueError, match="steps"):
        diffusion.make_scheduler("ddpm", T + 1)
    with pytest.raises(ValueError, match="sampler"):
        diffusion.make_scheduler("euler", 10)


# --------------------------------------------------------------------------------- samplers


@pytest.mark.parametrize(
    "sampler, steps, start_step",
    [("ddpm", 500, None), ("ddpm", 50, None), ("ddim", 50, None), ("dpmsolver", 20, None),
     ("ddpm", 500, 800), ("ddim", 50, 600), ("dpmsolver", 20, 800)],
)
def test_every_sampler_recovers_the_oracle_target(diffusion, sampler, steps, start_step):
    g = seeded(3)
    x_lr = torch.rand(3, 1, 8, 8, generator=g) * 2 - 1
    factors = torch.tensor([1.5, 2.25, 1.125])
    target = fixed_target(x_lr, factors)
    assert target.abs().max() > 1.2  # some of it lies outside [-1, 1]
    mean, std = diffusion.sample(fixed_oracle(diffusion.alphas_cumprod), x_lr, factors, sampler=sampler,
                                 steps=steps, repeats=3, batch_size=4, start_step=start_step,
                                 generator=seeded(4), progress=False)
    assert mean.shape == std.shape == x_lr.shape
    assert mean.min() >= -1 and mean.max() <= 1
    np.testing.assert_allclose(mean.numpy(), target.clamp(-1, 1).numpy(), atol=1e-4)
    assert std.max().item() < 1e-4


@pytest.mark.parametrize("sampler, steps, start_step", [("ddpm", 50, None), ("ddim", 50, 600), ("dpmsolver", 20, None)])
def test_projected_x0_drives_every_sampler(diffusion, sampler, steps, start_step):
    # a predictor whose x0 is the target plus an offset of 0.25; a projection that removes it
    # gives the target, called once per step on the whole stack of chains
    g = seeded(5)
    x_lr = (torch.rand(2, 1, 8, 8, generator=g) * 2 - 1) * 0.3  # target + offset within [-1, 1]
    factors = torch.tensor([1.5, 2.0])
    target = fixed_target(x_lr, factors)
    oracle = fixed_oracle(diffusion.alphas_cumprod)
    abar = torch.as_tensor(diffusion.alphas_cumprod, dtype=torch.float32)

    def biased(x_t, x_lr_, t, f):
        return oracle(x_t, x_lr_, t, f) - 0.25 * abar[t].sqrt().view(-1, 1, 1, 1) / (1 - abar[t]).sqrt().view(-1, 1, 1, 1)

    calls = []

    def project(x0):
        calls.append(tuple(x0.shape))
        return x0 - 0.25

    kw = dict(sampler=sampler, steps=steps, repeats=3, batch_size=2, start_step=start_step, progress=False)
    plain, _ = diffusion.sample(biased, x_lr, factors, generator=seeded(6), **kw)
    mean, std = diffusion.sample(biased, x_lr, factors, generator=seeded(6), project_x0=project, **kw)
    assert (plain - target.clamp(-1, 1)).mean().item() > 0.2  # the offset, unprojected
    np.testing.assert_allclose(mean.numpy(), target.clamp(-1, 1).numpy(), atol=1e-3)
    assert std.max().item() < 1e-3
    n_steps = len(diffusion.schedule_timesteps(sampler, steps, start_step=start_step))
    assert calls == [(6, 1, 8, 8)] * n_steps


@pytest.mark.parametrize("sampler", ["ddim", "dpmsolver"])
def test_x0_prediction_is_clamped_at_every_step(diffusion, sampler):
    # A predictor whose x0 is 1.6 everywhere. Clamped to 1, a deterministic sampler keeps
    # x = alpha_k * 1 + sigma_k * e with the start's e = (z - alpha_0) / sigma_0 at every step.
    abar = diffusion.alphas_cumprod
    inputs = []

    def predictor(x_t, x_lr, t, factors):
        inputs.append(x_t.clone())
        a, s = abar[t].sqrt().view(-1, 1, 1, 1), (1 - abar[t]).sqrt().view(-1, 1, 1, 1)
        return ((x_t.double() - a * 1.6) / s).float()

    x_lr = torch.zeros(2, 1, 4, 4)
    mean, _ = diffusion.sample(predictor, x_lr, [1.5, 1.5], sampler=sampler, steps=10, repeats=1,
                               generator=seeded(13), progress=False)
    scheduler = diffusion.make_scheduler(sampler, 10)
    if sampler == "dpmsolver":
        ratio = scheduler.sigmas[:10].double()
        alphas = 1 / (1 + ratio**2).sqrt()
        sigmas = ratio * alphas
    else:
        a32 = scheduler.alphas_cumprod[scheduler.timesteps].double()
        alphas, sigmas = a32.sqrt(), (1 - a32).sqrt()
    z = torch.randn((2, 1, 4, 4), generator=seeded(13)).double()
    e = (z - alphas[0]) / sigmas[0]
    assert len(inputs) == 10
    for k, x_t in enumerate(inputs):
        np.testing.assert_allclose(x_t.double().numpy(), (alphas[k] + sigmas[k] * e).numpy(), atol=1e-4)
    np.testing.assert_allclose(mean.numpy(), 1.0, atol=1e-5)


@pytest.mark.parametrize("steps", [500, 50])
def test_ddpm_reproduces_the_chain_moments_of_gaussian_data(diffusion, steps):
    h = 16
    small, _ = gaussian_variances(h)
    mean, _ = diffusion.sample(gaussian_oracle(diffusion.alphas_cumprod, h), torch.zeros(32, 1, h, h),
                               [1.5] * 32, sampler="ddpm", steps=steps, repeats=1, batch_size=32,
                               generator=seeded(5), progress=False)
    abar = abar_linear()
    for mask, v in ((~small, V_LARGE), (small, V_SMALL)):
        values = mean[..., mask].double()
        expected_mean, expected_var = ddpm_chain_moments(abar, steps, v)
        n = values.numel()
        assert abs(values.mean().item() - expected_mean) < 4.5 * math.sqrt(expected_var / n)
        assert values.var().item() == pytest.approx(expected_var, rel=4.5 * math.sqrt(2 / n))


def test_ddim_follows_its_chain_exactly_on_gaussian_data(diffusion):
    h, n = 8, 4
    _, v = gaussian_variances(h)
    mean, _ = diffusion.sample(gaussian_oracle(diffusion.alphas_cumprod, h), torch.zeros(n, 1, h, h), [1.5] * n,
                               sampler="ddim", steps=50, repeats=1, generator=seeded(6), progress=False)
    z = torch.randn((n, 1, h, h), generator=seeded(6))  # the sampler's first draw
    np.testing.assert_allclose(mean.numpy(), ddim_chain(abar_linear(), 50, z, v).numpy(), atol=2e-5)


def test_dpmsolver_solves_the_probability_flow_ode(diffusion):
    h, n = 8, 4
    _, v = gaussian_variances(h)
    mean, _ = diffusion.sample(gaussian_oracle(diffusion.alphas_cumprod, h), torch.zeros(n, 1, h, h), [1.5] * n,
                               sampler="dpmsolver", steps=20, repeats=1, generator=seeded(7), progress=False)
    z = torch.randn((n, 1, h, h), generator=seeded(7)).double()
    abar = torch.from_numpy(abar_linear())
    # The ODE keeps each pixel's standardized value: x_t = a MU + sqrt(a^2 v + s^2) u.
    u = (z - abar[-1].sqrt() * MU) / (abar[-1] * v + 1 - abar[-1]).sqrt()
    a0 = abar[0].sqrt()
    x_at_0 = a0 * MU + (a0 * a0 * v + 1 - abar[0]).sqrt() * u
    expected = MU + a0 * v / (a0 * a0 * v + 1 - abar[0]) * (x_at_0 - a0 * MU)  # last step: denoise at t = 0
    error = (mean.double() - expected).abs()
    assert error.max().item() < 2e-2
    assert error.pow(2).mean().sqrt().item() < 4e-3


def test_repeats_form_a_spectrum_major_stack_with_population_std(diffusion):
    h, n, r = 8, 3, 4
    oracle = gaussian_oracle(diffusion.alphas_cumprod, h)
    x_lr = torch.zeros(n, 1, h, h)
    mean, std = diffusion.sample(oracle, x_lr, [1.5] * n, steps=50, repeats=r, batch_size=5,
                                 generator=seeded(8), progress=False)
    # The same chains one by one: a stack of n * r spectra with one repeat draws identical noise.
    chains, _ = diffusion.sample(oracle, x_lr.repeat_interleave(r, dim=0), [1.5] * (n * r), steps=50,
                                 repeats=1, batch_size=5, generator=seeded(8), progress=False)
    chains = chains.view(n, r, 1, h, h).numpy()
    np.testing.assert_allclose(mean.numpy(), chains.mean(axis=1), atol=1e-6)
    np.testing.assert_allclose(std.numpy(), chains.std(axis=1, ddof=0), atol=1e-6)
    broad = ~gaussian_variances(h)[0]
    # Pixels of std 0.15 keep std ~0.1 after 50 DDPM steps (ddpm_chain_moments): repeats differ.
    assert std[..., broad].mean().item() > 0.05


def test_same_seed_same_result_and_batch_size_does_not_matter(diffusion):
    h = 8
    oracle = gaussian_oracle(diffusion.alphas_cumprod, h)
    x_lr = torch.zeros(5, 1, h, h)
    results = [
        diffusion.sample(oracle, x_lr, [1.5] * 5, steps=50, repeats=3, batch_size=b, generator=seeded(9),
                         progress=False)
        for b in (15, 15, 1, 4)
    ]
    for mean, std in results[1:]:
        assert torch.equal(mean, results[0][0]) and torch.equal(std, results[0][1])
    other, _ = diffusion.sample(oracle, x_lr, [1.5] * 5, steps=50, repeats=3, generator=seeded(10), progress=False)
    assert not torch.allclose(other, results[0][0])


def test_predictor_sees_chunks_with_their_own_inputs(diffusion):
    calls = []
    oracle = fixed_oracle(diffusion.alphas_cumprod)

    def recording(x_t, x_lr, t, factors):
        calls.append((x_t.shape[0], t.dtype, t.unique().tolist(), factors.dtype, factors.device.type))
        return oracle(x_t, x_lr, t, factors)

    x_lr = torch.zeros(3, 1, 8, 8)
    diffusion.sample(recording, x_lr, [1.5, 2.0, 2.25], steps=10, repeats=2, batch_size=4, generator=seeded(0),
                     progress=False)
    assert [c[0] for c in calls[:2]] == [4, 2] and len(calls) == 20
    assert all(c[1] == torch.int64 and len(c[2]) == 1 and c[3] == torch.float64 and c[4] == "cpu" for c in calls)


def test_autocast_runs_the_predictor_in_reduced_precision(diffusion):
    seen = []
    oracle = fixed_oracle(diffusion.alphas_cumprod)

    def predictor(x_t, x_lr, t, factors):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return oracle(x_t, x_lr, t, factors)

    x_lr = torch.rand(2, 1, 8, 8, generator=seeded(11)) * 2 - 1
    kwargs = dict(steps=20, repeats=2, generator=seeded(12), progress=False)
    plain, _ = diffusion.sample(oracle, x_lr, [1.5, 2.0], **kwargs)
    kwargs["generator"] = seeded(12)
    mean, _ = diffusion.sample(predictor, x_lr, [1.5, 2.0], autocast_dtype=torch.bfloat16, **kwargs)
    assert seen and all(enabled and dtype == torch.bfloat16 for enabled, dtype in seen)
    assert mean.dtype == torch.float32
    torch.testing.assert_close(mean, plain)
    with pytest.raises(ValueError, match="autocast_dtype"):
        diffusion.sample(oracle, x_lr, [1.5, 2.0], autocast_dtype=torch.float64, **kwargs)


def test_sample_keeps_the_callers_dtype(diffusion):
    x_lr = torch.zeros(2, 1, 8, 8, dtype=torch.float64)
    mean, std = diffusion.sample(fixed_oracle(diffusion.alphas_cumprod), x_lr, [1.5, 1.5], steps=10, repeats=2,
                                 generator=seeded(0), progress=False)
    assert mean.dtype == std.dtype == torch.float64


def test_sample_rejects_bad_arguments(diffusion):
    x_lr = torch.zeros(2, 1, 8, 8)
    oracle = fixed_oracle(diffusion.alphas_cumprod)
    with pytest.raises(ValueError, match="x_lr"):
        diffusion.sample(oracle, torch.zeros(2, 8, 8), [1.5, 1.5], progress=False)
    with pytest.raises(ValueError, match="factors"):
        diffusion.sample(oracle, x_lr, [1.5], progress=False)
    with pytest.raises(ValueError, match="repeats"):
        diffusion.sample(oracle, x_lr, [1.5, 1.5], repeats=0, progress=False)
    with pytest.raises(TypeError, match="generator"):
        diffusion.sample(oracle, x_lr, [1.5, 1.5], generator=0, progress=False)
    with pytest.raises(ValueError, match="predict_fn returned shape"):
        diffusion.sample(lambda x_t, *a: x_t[:, :, :4], x_lr, [1.5, 1.5], steps=10, progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("sampler, steps", [("ddpm", 50), ("dpmsolver", 20)])
def test_cuda_sampling_loop_never_synchronizes(diffusion, sampler, steps):
    device = torch.device("cuda")
    abar = diffusion.alphas_cumprod.to(device)
    x_lr = torch.rand(3, 1, 8, 8, device=device) * 2 - 1
    factors = torch.tensor([1.5, 2.0, 2.25])
    target = fixed_target(x_lr, factors.to(device))
    chain_target = target.repeat_interleave(2, dim=0)  # one network call holds all 6 chains

    def oracle(x_t, x_lr_, t, f):
        a = abar[t].sqrt().view(-1, 1, 1, 1).float()
        s = (1 - abar[t]).sqrt().view(-1, 1, 1, 1).float()
        return (x_t - a * chain_target) / s

    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        mean, _ = diffusion.sample(oracle, x_lr, factors, sampler=sampler, steps=steps, repeats=2, batch_size=6,
                                   generator=torch.Generator(device).manual_seed(0), progress=False)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.testing.assert_close(mean.cpu(), target.clamp(-1, 1).cpu(), atol=1e-4, rtol=0)


def test_the_config_schema_lists_the_samplers_of_the_code():
    from pathlib import Path

    import yaml

    from mssr.model.diffusion import SAMPLERS

    schema = (Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml").read_text()
    enums = []

    def walk(node):
        if isinstance(node, dict):
            if "sampler" in node and isinstance(node["sampler"], dict) and "enum" in node["sampler"]:
                enums.append(node["sampler"]["enum"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load(schema))
    assert len(enums) >= 2  # the sample section and the sampler variants
    assert all(tuple(e) == SAMPLERS for e in enums), enums


# --------------------------------------------------------------------------------- residual (x0 - x_lr) prediction


@pytest.fixture(scope="module")
def residual():
    return Diffusion(DiffusionConfig(timesteps=T, prediction="residual"))


def test_residual_loss_is_the_x0_error_relative_to_the_input_peak(residual):
    g = seeded(5)
    x0 = torch.rand(4, 1, 8, 8, generator=g) * 0.2 - 0.1
    x_lr = torch.rand(4, 1, 8, 8, generator=g) * 0.2 - 0.1
    x_lr[1] *= 0.05  # a weak spectrum: its relative error counts as much as a strong one's
    factors = [1.5, 2.0, 1.2, 3.0]

    def predictor(x_t, x_lr_, t, f):
        return 0.5 * (x_t - x_lr_)

    loss = residual.training_loss(predictor, x0, x_lr, factors, generator=seeded(8))
    replay = seeded(8)
    t = torch.randint(0, T, (4,), generator=replay).numpy()
    noise = torch.randn(x0.shape, generator=replay).numpy().astype(np.float64)
    abar = abar_linear()[t].reshape(-1, 1, 1, 1)
    x0n, xln = x0.numpy().astype(np.float64), x_lr.numpy().astype(np.float64)
    x_t = np.sqrt(abar) * x0n + np.sqrt(1 - abar) * noise
    x0_hat = xln + 0.5 * (x_t - xln)
    per_item = np.mean((x0_hat - x0n) ** 2, axis=(1, 2, 3)) / np.max(np.abs(xln), axis=(1, 2, 3)) ** 2
    assert loss.item() == pytest.approx(per_item.mean(), rel=1e-4)
    # The identity (zero residual) scores the input's own error.
    identity = residual.training_loss(lambda x_t, x_lr_, t, f: torch.zeros_like(x_t), x0, x_lr, factors)
    expected = np.mean(np.mean((xln - x0n) ** 2, axis=(1, 2, 3)) / np.max(np.abs(xln), axis=(1, 2, 3)) ** 2)
    assert identity.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "sampler, steps, start_step",
    [("ddpm", 50, None), ("ddim", 50, None), ("dpmsolver", 20, None), ("ddpm", 100, 40), ("ddim", 50, 600)],
)
def test_every_sampler_recovers_the_residual_oracle_target(residual, sampler, steps, start_step):
    # A network that returns target - x_lr exactly: every sampler must end on the target.
    g = seeded(6)
    x_lr = torch.rand(3, 1, 8, 8, generator=g) * 2 - 1
    factors = torch.tensor([1.5, 2.25, 1.125])
    target = fixed_target(x_lr, factors)

    def oracle(x_t, x_lr_, t, f):
        return fixed_target(x_lr_, f.to(x_lr_.dtype)) - x_lr_

    mean, std = residual.sample(oracle, x_lr, factors, sampler=sampler, steps=steps, repeats=3, batch_size=4,
                                start_step=start_step, generator=seeded(7), progress=False)
    np.testing.assert_allclose(mean.numpy(), target.clamp(-1, 1).numpy(), atol=1e-4)
    assert std.max().item() < 1e-4


def test_residual_and_epsilon_parameterizations_sample_the_same_chain(diffusion, residual):
    # The Bayes-optimal denoiser of Gaussian data, given as eps or as x0 - x_lr: the DDPM chains agree.
    h = 6
    abar = diffusion.alphas_cumprod
    eps_oracle = gaussian_oracle(abar, h)
    abar64 = torch.as_tensor(abar, dtype=torch.float64)

    def residual_oracle(x_t, x_lr, t, f):
        a = abar64[t.cpu()].sqrt().view(-1, 1, 1, 1)
        s = (1 - abar64[t.cpu()]).sqrt().view(-1, 1, 1, 1)
        eps = eps_oracle(x_t, x_lr, t, f).double()
        return ((x_t.double() - s * eps) / a - x_lr.double()).to(x_t.dtype)

    x_lr = torch.full((4, 1, h, h), 0.05)
    kwargs = dict(sampler="ddpm", steps=50, repeats=2, batch_size=8, progress=False)
    a, _ = diffusion.sample(eps_oracle, x_lr, [1.5] * 4, generator=seeded(11), **kwargs)
    b, _ = residual.sample(residual_oracle, x_lr, [1.5] * 4, generator=seeded(11), **kwargs)
    np.testing.assert_allclose(b.numpy(), a.numpy(), atol=2e-4)
