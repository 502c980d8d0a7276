"""`mssr enhance`: a spectrum file in, the high-field estimate, its uncertainty and a record out."""

from __future__ import annotations

import hashlib
import json
import shutil
from fractions import Fraction
from pathlib import Path

import nmrglue as ng
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from mssr import io
from mssr.cli import main
from mssr.model.diffusion import DiffusionConfig
from mssr.enhance.run import enhance, input_sha256, sample_config
from mssr.factors import FACTORS
from mssr.model.sample import Enhancer
from mssr.model.network import ModelConfig, build_unet, save_model
from mssr.spectrum import Axis, Spectrum

S = 16  # pixels of the micro models
FAST = {"steps": 3, "repeats": 2, "sampler": "ddpm"}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _micro_model(directory: Path, *, conditioning="class", factors=FACTORS, seed=0) -> Path:
    """An untrained micro model saved as training would save it (weights are irrelevant to these tests)."""
    torch.manual_seed(seed)
    cfg = ModelConfig(sample_size=S, block_out_channels=(8, 16), layers_per_block=1, attention_levels=(False, False),
                      mid_attention=False, conditioning=conditioning, norm_num_groups=4)
    extra = {"kind": "mssr", "diffusion": DiffusionConfig(timesteps=50).to_dict(),
             "factors": [float(f) for f in factors], "mlflow_run_id": "0123456789abcdef", "tracking_uri": None}
    return save_model(build_unet(cfg), cfg, directory, extra=extra)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return _micro_model(tmp_path_factory.mktemp("models") / "mssr")


@pytest.fixture(scope="module")
def baseline_dir(tmp_path_factory) -> Path:
    return _micro_model(tmp_path_factory.mktemp("models") / "baseline_2.000", conditioning="none",
                        factors=[Fraction(2)])


@pytest.fixture(scope="module")
def continuous_dir(tmp_path_factory) -> Path:
    return _micro_model(tmp_path_factory.mktemp("models") / "continuous", conditioning="continuous")


def _axes(shape, field_mhz=400.0, nuclei=None):
    windows = {"1H": (11.0, 6.0), "15N": (132.0, 102.0), "13C": (70.0, 40.0)}
    nuclei = nuclei or {2: ("15N", "1H"), 3: ("13C", "15N", "1H")}[len(shape)]
    return tuple(Axis.from_ppm_window(n, field_mhz, *windows[n], size) for n, size in zip(nuclei, shape))


def _peaks(shape, seed=0) -> np.ndarray:
    """Gaussian peaks on seeded noise, float32."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij")
    data = 0.01 * rng.standard_normal(shape)
    for _ in range(6):
        centre = [rng.uniform(2, n - 3) for n in shape]
        data += rng.uniform(0.3, 1.0) * np.exp(-sum((g - c) ** 2 for g, c in zip(grids, centre)) / 2.0)
    return data.astype(np.float32)


def _ramp(shape) -> np.ndarray:
    """A positive separable product of linear ramps: reproduced exactly, away from the edges, by a
    block-mean downsampling followed by linear upsampling (see test_mapping_back_to_input_grid)."""
    factors = [1.0 + np.arange(n) / n for n in shape]
    out = factors[0]
    for f in factors[1:]:
        out = np.multiply.outer(out, f)
    return (100.0 * out).astype(np.float32)


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _write_bruker(expno: Path, spectrum: Spectrum) -> Path:
    """A TopSpin procno directory ``expno/pdata/1`` written by nmrglue; returns its path."""
    dic = {}
    ndim = spectrum.ndim
    for i, axis in enumerate(spectrum.axes):
        name = "procs" if i == ndim - 1 else f"proc{ndim - i}s"
        dic[name] = {
            "SI": axis.size, "XDIM": max(1, axis.size // 2), "SW_p": axis.sw_hz, "SF": axis.obs_mhz,
            "OFFSET": axis.ppm_first, "AXNUC": axis.nucleus, "NC_proc": 0, "BYTORDP": 0, "DTYPP": 0,
            "PPARMOD": ndim - 1, "_comments": [], "_coreheader": ["##TITLE= Parameter file", "##JCAMPDX= 5.0"],
        }
    # Bruker stores integers: scale the peaks up so rounding is negligible
    data = np.round(np.asarray(spectrum.data, dtype=np.float64) * 1e6)
    ng.bruker.write_pdata(str(expno), dic, data, write_procs=True, pdata_folder=1, scale_data=True, overwrite=True)
    return expno / "pdata" / "1"


def _write_input(tmp_path: Path, kind: str, field_mhz=400.0) -> tuple[Path, Spectrum]:
    """A generated spectrum of ``kind`` written in its format; returns (path, spectrum as read back)."""
    if kind == "ucsf_2d":
        path = io.write(Spectrum(_peaks((32, 64)), _axes((32, 64), field_mhz)), tmp_path / "hsqc.ucsf")
    elif kind == "pipe_2d":
        path = io.write(Spectrum(_peaks((32, 64)), _axes((32, 64), field_mhz)), tmp_path / "hsqc.ft2")
    elif kind == "pipe_3d":
        path = io.write(Spectrum(_peaks((8, 16, 32)), _axes((8, 16, 32), field_mhz)), tmp_path / "hnca.ft3")
    elif kind == "bruker_2d":
        path = _write_bruker(tmp_path / "hsqc" / "1", Spectrum(_peaks((32, 64)), _axes((32, 64), field_mhz)))
    else:
        raise AssertionError(kind)
    return path, io.read(path)


def _assert_same_grid(result: Spectrum, axes, *, field_mhz: float):
    assert result.shape == tuple(a.size for a in axes)
    assert result.nuclei == tuple(a.nucleus for a in axes)
    for got, want in zip(result.axes, axes):
        # ppm of the first and last points as in the input (float32 headers: 1e-4 ppm is 1e-3 of a point)
        assert_allclose(got.ppm_limits, want.ppm_limits, atol=1e-4)
        assert_allclose(got.ppm_per_point, want.ppm_per_point, rtol=1e-5)
    assert_allclose(result.field_mhz, field_mhz, rtol=1e-5)


# ---- sampling protocol -------------------------------------------------------------------------


def test_sample_config_protocols():
    paper = sample_config()
    assert (paper.sampler, paper.steps, paper.repeats) == ("ddpm", 500, 5)
    assert paper.start_step is None
    # fast: ddpm from the noised input (measured within the protocol), never DPM-Solver++ (20x worse)
    fast = sample_config(fast=True)
    assert (fast.sampler, fast.steps, fast.repeats, fast.start_step) == ("ddpm", 50, 2, 200)
    mixed = sample_config(fast=True, steps=100, seed=3)
    assert (mixed.sampler, mixed.steps, mixed.repeats, mixed.seed) == ("ddpm", 100, 2, 3)
    assert sample_config(sampler="ddim", repeats=1).sampler == "ddim"
    with pytest.raises(ValueError, match="--steps"):
        sample_config(steps=0)
    with pytest.raises(ValueError, match="--sampler"):
        sample_config(sampler="euler")
    with pytest.raises(ValueError, match="--device"):
        sample_config(device="no-such-device")


# ---- formats -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ucsf_2d", "pipe_2d", "pipe_3d", "bruker_2d"])
def test_enhance_each_format(tmp_path, model_dir, kind):
    path, original = _write_input(tmp_path, kind)
    before = input_sha256(path)
    result = enhance(path, from_mhz=400, to_mhz=900, model_dir=model_dir, seed=1, **FAST)
    assert input_sha256(path) == before
    assert result["factor"] == "2.250" and result["factor_exact"] == "9/4"
    assert (result["sampler"], result["steps"], result["repeats"]) == ("ddpm", 3, 2)
    if original.ndim == 3:
        # HNCA-like 13C/15N/1H: both indirect axes paired with 1H, one output each
        assert result["projections"] == ["13C-1H", "15N-1H"]
        assert [Path(p).name for p in result["outputs"]] == ["hnca_mssr900_13C-1H.ft2", "hnca_mssr900_15N-1H.ft2"]
        grids = [(original.axes[0], original.axes[2]), (original.axes[1], original.axes[2])]
        assert any("3D input" in note for note in result["notes"])
    else:
        grids = [original.axes]
        name = {"ucsf_2d": "hsqc_mssr900.ucsf", "pipe_2d": "hsqc_mssr900.ft2", "bruker_2d": "1_pdata1_mssr900.ft2"}
        assert [Path(p).name for p in result["outputs"]] == [name[kind]]
    if kind == "bruker_2d":
        assert result["output_format"] == "pipe" and Path(result["outputs"][0]).parent == tmp_path / "hsqc"
        assert any("NMRPipe" in note for note in result["notes"])
    for out, std, sidecar, axes in zip(result["outputs"], result["std"], result["sidecars"], grids):
        assert Path(std).name == Path(out).name.replace(".", "_std.", 1)
        assert io.detect_format(out) == result["output_format"] == io.detect_format(std)
        estimate, spread = io.read(out), io.read(std)
        for spectrum in (estimate, spread):
            _assert_same_grid(spectrum, axes, field_mhz=900.0)
            assert np.isfinite(spectrum.data).all()
        assert (spread.data >= 0).all() and spread.data.max() > 0  # two repeats of a random network differ
        record = json.loads(Path(sidecar).read_text())
        assert record["input"]["sha256"] == before and record["input"]["path"] == str(Path(path).resolve())
        assert record["model"]["mlflow_run_id"] == "0123456789abcdef"
        assert record["model"]["config_sha256"] == _sha(model_dir / "config.json")
        assert record["factor"] == {"from_mhz": 400.0, "to_mhz": 900.0, "value": 2.25, "exact": "9/4", "label": "2.250"}
        assert (record["protocol"]["sampler"], record["protocol"]["steps"], record["protocol"]["repeats"],
                record["seed"]) == ("ddpm", 3, 2, 1)
        assert record["mssr_version"] and record["created"]
        assert record["outputs"] == {"spectrum": out, "std": std, "plot": None}


def test_input_sha256_of_a_file_and_of_a_directory(tmp_path):
    path, _ = _write_input(tmp_path, "ucsf_2d")
    assert input_sha256(path) == _sha(path)
    procno = _write_bruker(tmp_path / "exp" / "1", Spectrum(_peaks((8, 12)), _axes((8, 12))))
    names = sorted(p.name for p in procno.iterdir() if p.is_file())
    listing = "".join(f"{_sha(procno / name)}  {name}\n" for name in names)
    assert input_sha256(procno) == hashlib.sha256(listing.encode()).hexdigest()
    assert {"procs", "proc2s", "2rr"} <= set(names)


def test_same_seed_same_output_and_force(tmp_path, model_dir):
    path, _ = _write_input(tmp_path, "ucsf_2d")
    first = enhance(path, from_mhz=400, to_mhz=800, model_dir=model_dir, seed=5, **FAST)
    data = io.read(first["outputs"][0]).data.copy()
    with pytest.raises(FileExistsError, match="--force"):
        enhance(path, from_mhz=400, to_mhz=800, model_dir=model_dir, seed=5, **FAST)
    again = enhance(path, from_mhz=400, to_mhz=800, model_dir=model_dir, seed=5, force=True, **FAST)
    np.testing.assert_array_equal(io.read(again["outputs"][0]).data, data)
    other = enhance(path, from_mhz=400, to_mhz=800, model_dir=model_dir, seed=6, force=True, **FAST)
    assert not np.array_equal(io.read(other["outputs"][0]).data, data)


def test_output_stays_within_the_input_scale(tmp_path, model_dir):
    """The estimate is mean x scale with |mean| <= 1; scale is max|block mean| of the input (32 x 64 -> 16 x 16:
    2 x 4 blocks), computed here independently."""
    path, original = _write_input(tmp_path, "pipe_2d")
    result = enhance(path, from_mhz=400, to_mhz=800, model_dir=model_dir, **FAST)
    scale = np.abs(np.asarray(original.data, dtype=np.float64).reshape(16, 2, 16, 4).mean(axis=(1, 3))).max()
    record = json.loads(Path(result["sidecars"][0]).read_text())
    assert_allclose(record["processing"]["scale"], scale, rtol=1e-5)
    estimate = io.read(result["outputs"][0]).data
    assert np.abs(estimate).max() <= scale * (1 + 1e-5)
    assert np.abs(estimate).max() > 0


# ---- mapping back: an identity "model" ----------------------------------------------------------


@pytest.fixture
def identity_model(monkeypatch):
    """Replace sampling by the identity (mean = input) with a constant std of 0.25: what enhance does around
    the model becomes exactly checkable."""

    def sample(self, x_lr, factor, cfg, *, progress=True):
        return x_lr.astype(np.float32), np.full_like(x_lr, 0.25, dtype=np.float32)

    monkeypatch.setattr(Enhancer, "sample", sample)


@pytest.mark.parametrize("transposed", [False, True])
def test_mapping_back_to_input_grid(tmp_path, model_dir, identity_model, transposed):
    """Block means (32 x 64 -> 16 x 16: 2 x 4 blocks) followed by linear interpolation back reproduce a
    separable product of linear ramps exactly, except next to the edges (where interpolation is clamped);
    a 2D input with its 1H axis first is written back in its own order."""
    ramp, axes = _ramp((32, 64)), _axes((32, 64))
    data, file_axes = (np.ascontiguousarray(ramp.T), axes[::-1]) if transposed else (ramp, axes)
    path = io.write(Spectrum(data, file_axes), tmp_path / "ramp.ucsf")
    result = enhance(path, from_mhz=400, to_mhz=600, model_dir=model_dir, **FAST)
    estimate, spread = io.read(result["outputs"][0]), io.read(result["std"][0])
    _assert_same_grid(estimate, file_axes, field_mhz=600.0)
    got = estimate.data.T if transposed else estimate.data
    assert_allclose(got[1:-1, 2:-2], ramp[1:-1, 2:-2], rtol=1e-5)
    scale = ramp.astype(np.float64).reshape(16, 2, 16, 4).mean(axis=(1, 3)).max()
    assert_allclose(spread.data, 0.25 * scale, rtol=1e-5)


def test_3d_projections_are_signed_max(tmp_path, model_dir, identity_model):
    """Each output of a 3D input is its signed-max projection (computed here with numpy) on the kept axes;
    negative peaks stay negative."""
    data = _ramp((8, 16, 32))
    data[:, :, 16:] *= -1.0
    data[:, :, 16:] += 0.1 * data[:, :, 16:].min()  # make the negative half the larger in magnitude
    axes = _axes((8, 16, 32), field_mhz=500.0)
    path = io.write(Spectrum(data, axes), tmp_path / "cube.ft3")
    result = enhance(path, from_mhz=500, to_mhz=900, model_dir=model_dir, **FAST)
    # 13C-1H (8 x 32): rows 8 -> 16 -> 8 are exact but for the first and last; 15N-1H (16 x 32): rows unchanged.
    # Columns 32 -> 16 -> 32 (pairs) are exact away from the edges and from the sign change at column 16.
    for out, away, kept, rows in zip(result["outputs"], (1, 0), ((0, 2), (1, 2)), (slice(1, -1), slice(None))):
        high, low = data.max(axis=away), data.min(axis=away)
        projection = np.where(high >= -low, high, low)
        estimate = io.read(out)
        _assert_same_grid(estimate, [axes[k] for k in kept], field_mhz=900.0)
        for cols in (slice(1, 14), slice(18, 31)):
            assert_allclose(estimate.data[rows, cols], projection[rows, cols], rtol=1e-5)
        assert (estimate.data[:, 18:] < 0).all() and (estimate.data[:, :14] > 0).all()


# ---- the measured protein L HSQC (800 MHz, pseudo-3D series of 4 planes) ---------------------------


def test_protein_l_plane(tmp_path, model_dir, protein_l_files):
    series = protein_l_files["ft2"]
    before = _sha(series)
    with pytest.raises(ValueError, match="--plane"):
        enhance(series, from_mhz=800, to_mhz=900, model_dir=model_dir, **FAST)
    plane0 = next(io.iter_planes(series, 0))
    out = tmp_path / "protein_L_900.ft2"
    result = enhance(series, from_mhz=800, to_mhz=900, model_dir=model_dir, plane=0, output=out, plot=True, **FAST)
    assert result["factor"] == "1.125" and result["outputs"] == [str(out)]
    assert any("plane 0" in note for note in result["notes"])
    estimate, spread = io.read(out), io.read(result["std"][0])
    for spectrum in (estimate, spread):
        _assert_same_grid(spectrum, plane0.axes, field_mhz=900.0)
        assert spectrum.shape == (256, 546) and np.isfinite(spectrum.data).all()
    assert Path(result["plots"][0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _sha(series) == before
    # the same plane as a 2D UCSF file: same estimate (same seed, same input values)
    ucsf = io.write(plane0, tmp_path / "plane0.ucsf")
    again = enhance(ucsf, from_mhz=800, to_mhz=900, model_dir=model_dir, **FAST)
    assert Path(again["outputs"][0]).name == "plane0_mssr900.ucsf"
    np.testing.assert_array_equal(io.read(again["outputs"][0]).data, estimate.data)
    with pytest.raises(ValueError, match="out of range"):
        enhance(series, from_mhz=800, to_mhz=900, model_dir=model_dir, plane=4, output=tmp_path / "x.ft2", **FAST)
    # the UCSF copy of the series has its pseudo axis in the middle (256 x 4 x 546)
    result = enhance(protein_l_files["ucsf"], from_mhz=800, to_mhz=900, model_dir=model_dir, plane=3,
                     output=tmp_path / "plane3.ucsf", **FAST)
    assert any("plane 3 along axis 1" in note for note in result["notes"])
    _assert_same_grid(io.read(result["outputs"][0]), plane0.axes, field_mhz=900.0)


# ---- models and factors ---------------------------------------------------------------------------


def test_continuous_model_takes_any_factor(tmp_path, continuous_dir):
    path, _ = _write_input(tmp_path, "ucsf_2d")
    result = enhance(path, from_mhz=400, to_mhz=950, model_dir=continuous_dir, **FAST)
    assert result["factor"] == "2.375" and result["factor_exact"] is None
    assert any("outside the trained range" in note for note in result["notes"])
    assert np.isfinite(io.read(result["outputs"][0]).data).all()


def test_baseline_model_supports_its_factor_only(tmp_path, baseline_dir):
    path, _ = _write_input(tmp_path, "ucsf_2d")
    with pytest.raises(ValueError, match=r"400->800 \(2.000\)") as err:
        enhance(path, from_mhz=400, to_mhz=900, model_dir=baseline_dir, **FAST)
    assert "2.250" in str(err.value) and "400->900" not in str(err.value)
    result = enhance(path, from_mhz=400, to_mhz=800, model_dir=baseline_dir, **FAST)
    assert result["factor"] == "2.000"


# ---- the command line ------------------------------------------------------------------------------


def test_cli_enhance(tmp_path, model_dir, capsys):
    path, original = _write_input(tmp_path, "pipe_2d", field_mhz=600.13)
    code = main(["enhance", str(path), "--from-mhz", "600", "--to-mhz", "900", "--model", str(model_dir),
                 "--steps", "2", "--repeats", "2", "--plot", "-q"])
    assert code == 0
    printed = capsys.readouterr().out
    out = tmp_path / "hsqc_mssr900.ft2"
    assert f"outputs: {out}" in printed and "factor: 1.500" in printed
    _assert_same_grid(io.read(out), original.axes, field_mhz=900.0)
    assert (tmp_path / "hsqc_mssr900.png").is_file() and (tmp_path / "hsqc_mssr900_std.ft2").is_file()


def _write_1d(tmp_path: Path) -> Path:
    udic = ng.fileiobase.create_blank_udic(1)
    udic[0].update(size=32, sw=4000.0, obs=400.0, car=4.7 * 400, label="1H", complex=False, time=False, freq=True)
    path = tmp_path / "one.ft1"
    ng.pipe.write(str(path), ng.pipe.create_dic(udic), np.ones(32, dtype=np.float32), overwrite=True)
    return path


def _write_nan(tmp_path: Path) -> Path:
    path, _ = _write_input(tmp_path, "ucsf_2d")
    dic, data = ng.sparky.read(str(path))
    data = data.copy()
    data[3, 4] = np.nan
    ng.sparky.write(str(path), dic, data, overwrite=True)
    return path


def _mismatched_model(tmp_path: Path, model_dir: Path) -> Path:
    broken = tmp_path / "broken_model"
    shutil.copytree(model_dir, broken)
    other = _micro_model(tmp_path / "other", seed=1)
    shutil.copy(other / "model.safetensors", broken / "model.safetensors")
    return broken


def _ucsf(tmp_path: Path) -> Path:
    return _write_input(tmp_path, "ucsf_2d")[0]


# case: (make input (tmp_path, model_dir) -> (path, options that replace the defaults), text of the message)
CASES = {
    "missing input": (lambda t, m: (t / "nope.ucsf", {}), "nope.ucsf"),
    "1D input": (lambda t, m: (_write_1d(t), {}), "1D"),
    "NaN input": (lambda t, m: (_write_nan(t), {}), "non-finite"),
    "lower target field": (lambda t, m: (_ucsf(t), {"--to-mhz": "300"}), "--to-mhz 300"),
    "factor not in Table 1": (lambda t, m: (_ucsf(t), {"--to-mhz": "950"}), "400->900 (2.250)"),
    "header disagrees": (lambda t, m: (_ucsf(t), {"--from-mhz": "600"}), "header"),
    "output is input": (lambda t, m: (_ucsf(t), {"-o": str(t / "hsqc.ucsf"), "--force": None}), "never"),
    "bad output suffix": (lambda t, m: (_ucsf(t), {"-o": str(t / "x.txt")}), "suffix"),
    "missing model": (lambda t, m: (_ucsf(t), {"--model": str(t / "none")}), "--model"),
    "mismatched model": (lambda t, m: (_ucsf(t), {"--model": str(_mismatched_model(t, m))}), "SHA-256"),
    "plane of a 2D file": (lambda t, m: (_ucsf(t), {"--plane": "0"}), "pseudo-ND"),
    "steps beyond T": (lambda t, m: (_ucsf(t), {"--steps": "60"}), "--steps 60"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_bad_input_exit_code_2(tmp_path, model_dir, capsys, case):
    make, expected = CASES[case]
    path, overrides = make(tmp_path, model_dir)
    options = {"--from-mhz": "400", "--to-mhz": "900", "--model": str(model_dir), "--steps": "2",
               "--repeats": "2", "-q": None, **overrides}
    args = ["enhance", str(path)] + [x for flag, value in options.items() for x in (flag, value) if x is not None]
    before = sorted(p.name for p in tmp_path.iterdir())
    digest = input_sha256(path) if Path(path).exists() else None
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("mssr enhance: error:") and expected in err, err
    if digest is not None:
        assert input_sha256(path) == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_existing_output_needs_force(tmp_path, model_dir, capsys):
    path, _ = _write_input(tmp_path, "ucsf_2d")
    (tmp_path / "hsqc_mssr900_std.ucsf").write_bytes(b"keep me")
    args = ["enhance", str(path), "--from-mhz", "400", "--to-mhz", "900", "--model", str(model_dir), "--steps", "2",
            "--repeats", "2", "-q"]
    assert main(args) == 2
    assert "already exist" in capsys.readouterr().err
    assert (tmp_path / "hsqc_mssr900_std.ucsf").read_bytes() == b"keep me"
    assert not (tmp_path / "hsqc_mssr900.ucsf").exists()
    assert main(args + ["--force"]) == 0
    assert io.read(tmp_path / "hsqc_mssr900_std.ucsf").shape == (32, 64)


def test_default_model_dir_missing(tmp_path, monkeypatch):
    from mssr.enhance import models

    path, _ = _write_input(tmp_path, "ucsf_2d")
    monkeypatch.setattr(models, "DEFAULT_MODEL_DIR", tmp_path / "not_installed")
    with pytest.raises(FileNotFoundError, match="shipped model is missing"):
        enhance(path, from_mhz=400, to_mhz=900, **FAST)


def test_default_model_is_the_shipped_native_model():
    from mssr.enhance import models

    assert models.DEFAULT_MODEL_DIR == Path(models.__file__).resolve().parent / "model"


def _hsqc_bruker(expno: Path, *, pulse_program: str | None, field_mhz: float = 600.13) -> Path:
    """A 2D 15N-1H TopSpin procno of Lorentzian lines (15N 20 Hz, 1H 30 Hz) with ``acqus`` PULPROG."""
    shape = (120, 200)
    obs = (field_mhz * 0.101329118, field_mhz)
    hz_per_point = (4.0, 4.0)
    ppm_first = (124.0, 8.9)
    axes = [Axis(n, o, h * s, p, s) for n, o, h, p, s in zip(("15N", "1H"), obs, hz_per_point, ppm_first, shape)]
    x = np.zeros(shape)
    t = [np.arange(s, dtype=np.float64) for s in shape]
    for r, c, h in [(30.2, 50.5, 1.0), (80.7, 60.1, 0.8), (55.4, 140.3, 0.9), (95.1, 170.8, 0.6)]:
        rows = 1 / (1 + (2 * (t[0] - r) / (20.0 / hz_per_point[0])) ** 2)
        cols = 1 / (1 + (2 * (t[1] - c) / (30.0 / hz_per_point[1])) ** 2)
        x += h * np.outer(rows, cols)
    x += np.random.default_rng(0).normal(0, 2e-3, shape)
    data = np.round(x * 1e6)
    dic = {}
    for i, axis in enumerate(axes):
        name = "procs" if i == 1 else "proc2s"
        dic[name] = {"SI": axis.size, "XDIM": axis.size // 2, "SW_p": axis.sw_hz, "SF": axis.obs_mhz,
                     "OFFSET": axis.ppm_first, "AXNUC": axis.nucleus, "NC_proc": 0, "BYTORDP": 0, "DTYPP": 0,
                     "PPARMOD": 1, "_comments": [], "_coreheader": ["##TITLE= Parameter file", "##JCAMPDX= 5.0"]}
    ng.bruker.write_pdata(str(expno), dic, data, write_procs=True, pdata_folder=1, scale_data=True, overwrite=True)
    if pulse_program is not None:
        ng.bruker.write_jcamp({"PULPROG": f"<{pulse_program}>", "SFO1": field_mhz, "_comments": [],
                               "_coreheader": ["##TITLE= Parameter file", "##JCAMPDX= 5.0"]}, str(expno / "acqus"))
    return expno / "pdata" / "1"


def test_the_pulse_program_names_the_linewidth_rule_of_the_shipped_model(tmp_path):
    # a Bruker TROSY: the anchor takes the TROSY rule (15N lines 1.65x wider in Hz at 600 than at 900 MHz)
    # and says so in the sidecar; --experiment overrides it; a file without acqus gets 'fixed'
    procno = _hsqc_bruker(tmp_path / "trosy", pulse_program="trosyetf3gpsi")
    assert io.read(procno).meta["pulse_program"] == "trosyetf3gpsi"
    kernels = {}
    for name, kwargs in [("auto", {}), ("fixed", {"experiment": "fixed"})]:
        result = enhance(procno, from_mhz=600.13, to_mhz=900.0, output=tmp_path / f"{name}.ft2", threads=1,
                         **kwargs)
        record = json.loads(Path(result["sidecars"][0]).read_text())
        kernels[name] = record["processing"]["experiment"]
        step = next(s for s in record["processing"]["steps"] if s.startswith("anchor:"))
        kernels[name]["widths"] = [float(w) for w in step.split("Lorentzian of ")[1].split(" working")[0].split(" x ")]
    assert {k: v for k, v in kernels["auto"].items() if k != "widths"} == {
        "rule": "trosy", "from": "pulse program trosyetf3gpsi"}
    assert kernels["fixed"]["rule"] == "fixed" and kernels["fixed"]["from"] == "--experiment"
    # same low-field lines: the TROSY rule takes a narrower high-field 15N line, so a wider kernel
    # (r f - 1) / (r f) against (f - 1) / f of the low-field width (0.60 and 0.33 of it); 1H unchanged
    from mssr.data.linewidths import width_ratio

    f = 900.0 / 600.13
    r = width_ratio("trosy", ("15N",), 600.13, 900.0)[0]
    ratio = kernels["auto"]["widths"][0] / kernels["fixed"]["widths"][0]
    assert ratio == pytest.approx((1 - 1 / (r * f)) / (1 - 1 / f), rel=0.05)
    assert kernels["auto"]["widths"][1] == pytest.approx(kernels["fixed"]["widths"][1], rel=0.02)
    bare = _hsqc_bruker(tmp_path / "bare", pulse_program=None)
    assert "pulse_program" not in io.read(bare).meta
    with pytest.raises(ValueError, match="--experiment"):
        enhance(bare, from_mhz=600.13, to_mhz=900.0, experiment="noesy")
