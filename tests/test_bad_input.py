"""Bad input and interruptions of `mssr enhance` and `mssr info`: a clear error (exit 2, one line naming the
culprit, no traceback), nothing half-written, never a wrong answer with exit code 0.

The numbers in the test names refer to the defects of the issue "Bad input and interruptions".
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from mssr import io
from mssr.cli import main
from mssr.enhance import outputs as enhance_outputs
from mssr.factors import FACTORS
from mssr.model.diffusion import DiffusionConfig
from mssr.model.network import CONFIG_FILE, WEIGHTS_FILE, ModelConfig, build_unet, save_model
from mssr.model.sample import Enhancer, SampleConfig, chunk_plan, combine_moments
from mssr.spectrum import Axis, Spectrum

ROOT = Path(__file__).resolve().parents[1]
S = 16
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
WINDOWS = {"1H": (11.0, 6.0), "15N": (132.0, 102.0), "13C": (70.0, 40.0)}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _micro_model(directory: Path, *, seed=0, extra_changes=None) -> Path:
    torch.manual_seed(seed)
    cfg = ModelConfig(sample_size=S, block_out_channels=(8, 16), layers_per_block=1, attention_levels=(False, False),
                      mid_attention=False, conditioning="class", norm_num_groups=4)
    extra = {"kind": "mssr", "diffusion": DiffusionConfig(timesteps=50).to_dict(),
             "factors": [float(f) for f in FACTORS], "mlflow_run_id": None, "tracking_uri": None}
    return save_model(build_unet(cfg), cfg, directory, extra=extra)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return _micro_model(tmp_path_factory.mktemp("models") / "mssr")


def _spectrum(shape=(32, 64), nuclei=("15N", "1H"), field_mhz=400.0, seed=0) -> Spectrum:
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij")
    data = 0.01 * rng.standard_normal(shape)
    for _ in range(5):
        centre = [rng.uniform(2, n - 3) for n in shape]
        data += rng.uniform(0.3, 1.0) * np.exp(-sum((g - c) ** 2 for g, c in zip(grids, centre)) / 2.0)
    axes = tuple(Axis.from_ppm_window(n, field_mhz, *WINDOWS[n], size) for n, size in zip(nuclei, shape))
    return Spectrum(data.astype(np.float32), axes)


def _ucsf(tmp_path: Path, name="hsqc.ucsf") -> Path:
    return io.write(_spectrum(), tmp_path / name)


def _enhance_args(path, model_dir, *extra) -> list[str]:
    return ["enhance", str(path), "--from-mhz", "400", "--to-mhz", "900", "--model", str(model_dir),
            "--steps", "2", "--repeats", "2", "-q", *extra]


def _run_cli(capsys, args) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def _listing(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


# ---- 1: incomplete or inconsistent model directories ------------------------------------------


MODEL_KEYS = [f"model.{k}" for k in ModelConfig.__dataclass_fields__]
DIFFUSION_KEYS = [f"extra.diffusion.{k}" for k in DiffusionConfig.__dataclass_fields__]


def _edited_model(tmp_path: Path, model_dir: Path, edit) -> Path:
    broken = tmp_path / "edited_model"
    broken.mkdir()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        (broken / name).write_bytes((model_dir / name).read_bytes())
    document = json.loads((broken / CONFIG_FILE).read_text())
    edit(document)
    (broken / CONFIG_FILE).write_text(json.dumps(document))
    return broken


def _drop(dotted: str):
    def edit(document):
        *parents, last = dotted.split(".")
        node = document
        for key in parents:
            node = node[key]
        del node[last]

    return edit


@pytest.mark.parametrize("key", MODEL_KEYS + DIFFUSION_KEYS + ["extra.factors", "extra.diffusion"])
def test_1_model_without_a_key_is_refused_naming_config_json_and_the_key(tmp_path, model_dir, capsys, key):
    broken = _edited_model(tmp_path, model_dir, _drop(key))
    code, err = _run_cli(capsys, _enhance_args(_ucsf(tmp_path), broken))
    assert code == 2
    assert CONFIG_FILE in err and key in err, err


@pytest.mark.parametrize("size", [32, 8])
def test_1_config_sample_size_disagreeing_with_the_weights_is_refused(tmp_path, model_dir, capsys, size):
    broken = _edited_model(tmp_path, model_dir, lambda d: d["model"].update(sample_size=size))
    code, err = _run_cli(capsys, _enhance_args(_ucsf(tmp_path), broken))
    assert code == 2
    assert CONFIG_FILE in err and "model.sample_size" in err and f"{size}" in err and "16" in err, err


def test_11_factors_all_in_config_json_names_the_key(tmp_path, model_dir, capsys):
    broken = _edited_model(tmp_path, model_dir, lambda d: d["extra"].update(factors="all"))
    code, err = _run_cli(capsys, _enhance_args(_ucsf(tmp_path), broken))
    assert code == 2 and "extra.factors" in err and "could not convert" not in err, err


# ---- 2: interruptions leave the previous set or nothing ---------------------------------------


DRIVER = textwrap.dedent('''
    import pathlib, sys, time
    import mssr.figures.enhance as figures
    from mssr.model.sample import Enhancer
    stage, marker = sys.argv[1], pathlib.Path(sys.argv[2])

    def stall():
        marker.write_text("ready")
        time.sleep(120)

    if stage == "sampling":
        real_sample = Enhancer.sample
        def sample(self, *args, **kwargs):
            stall()
        Enhancer.sample = sample
    else:  # "writing": spectrum, std and PNG staged, sidecar not yet
        real_plot = figures.plot_enhanced
        def plot(*args, **kwargs):
            out = real_plot(*args, **kwargs)
            stall()
            return out
        figures.plot_enhanced = plot
    from mssr.cli import main
    sys.exit(main(sys.argv[3:]))
''')


def _interrupt(tmp_path: Path, stage: str, signum: int, args: list[str]) -> tuple[int, str]:
    marker = tmp_path.parent / f"{tmp_path.name}.{stage}.ready"
    marker.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, stage, str(marker), *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the driver never reached the stage"
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


@pytest.mark.parametrize("stage, signum, over_earlier_set", [
    ("sampling", signal.SIGINT, False), ("sampling", signal.SIGTERM, True),
    ("writing", signal.SIGINT, True), ("writing", signal.SIGTERM, False),
])
def test_2_interruption_leaves_the_previous_set_or_nothing(tmp_path, model_dir, stage, signum, over_earlier_set):
    """SIGINT/SIGTERM while sampling or while the set is being written (spectrum, std and PNG staged, sidecar
    not): exit 128 + signal, no traceback, and the folder exactly as before (nothing new, or the complete
    earlier set byte for byte under --force), with no temporary file."""
    work = tmp_path / "work"
    work.mkdir()
    args = _enhance_args(_ucsf(work), model_dir, "--plot")
    if over_earlier_set:
        assert main(args) == 0
        assert {"hsqc_mssr900.ucsf", "hsqc_mssr900_std.ucsf", "hsqc_mssr900.png",
                "hsqc_mssr900.ucsf.json"} <= set(_listing(work))
        args = args + ["--force", "--seed", "7"]
    before = _listing(work)
    code, err = _interrupt(tmp_path, stage, signum, args)
    assert code == 128 + signum and "Traceback" not in err, err
    assert signal.Signals(signum).name in err
    assert _listing(work) == before and sorted(p.name for p in work.iterdir()) == sorted(before)


def test_2_a_signal_during_the_commit_is_acted_on_once_the_set_is_complete(tmp_path, monkeypatch):
    """SIGTERM arriving between the renames of the commit waits until the last rename: the new set is complete."""
    from mssr import atomic

    real_replace, renamed = os.replace, []

    def replace(src, dst):
        if not renamed:
            os.kill(os.getpid(), signal.SIGTERM)
        renamed.append(Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(atomic.Interrupted) as caught:
        with atomic.interruptible(), atomic.FileSet(last=[tmp_path / "out.json"]) as files:
            files.stage(tmp_path / "out.ft2").write_text("spectrum")
            files.stage(tmp_path / "out.json").write_text("sidecar")
    assert caught.value.exit_code == 143
    assert renamed == ["out.ft2", "out.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ft2", "out.json"]


def test_2_force_replaces_the_whole_set_and_removes_its_stale_parts(tmp_path, model_dir, capsys):
    path = _ucsf(tmp_path)
    assert main(_enhance_args(path, model_dir, "--plot")) == 0
    assert (tmp_path / "hsqc_mssr900.png").is_file()
    assert main(_enhance_args(path, model_dir, "--force", "--seed", "3")) == 0
    assert not (tmp_path / "hsqc_mssr900.png").exists()  # the PNG of the earlier set would not match the new one
    record = json.loads((tmp_path / "hsqc_mssr900.ucsf.json").read_text())
    assert record["seed"] == 3 and record["outputs"]["plot"] is None
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# ---- 3: repeats are chunked, absurd values refused ---------------------------------------------


def test_3_repeats_beyond_the_limit_are_refused_before_anything_runs(tmp_path, model_dir, capsys):
    args = _enhance_args(_ucsf(tmp_path), model_dir)[:-3]
    code, err = _run_cli(capsys, args + ["--repeats", "100000"])
    assert code == 2 and "--repeats 100000" in err and "10,000" in err, err
    with pytest.raises(SystemExit) as caught:  # argparse's own exit 2 and one line
        main(args + ["--repeats", "1e12"])
    assert caught.value.code == 2 and "invalid int" in capsys.readouterr().err
    assert not list(tmp_path.glob("hsqc_mssr900*"))


def test_3_combine_moments_equals_the_moments_of_all_samples():
    rng = np.random.default_rng(4)
    samples = rng.normal(3.0, 2.0, size=(23, 5, 6))
    moments = None
    for start in range(0, 23, 4):  # chunks of 4, the last of 3
        chunk = samples[start : start + 4]
        part = (len(chunk), chunk.mean(axis=0), chunk.std(axis=0))
        moments = part if moments is None else combine_moments(moments, part)
    assert moments[0] == 23
    assert_allclose(moments[1], samples.mean(axis=0), rtol=1e-12)
    assert_allclose(moments[2], samples.std(axis=0), rtol=1e-12)


@pytest.mark.parametrize("n, repeats, batch, plan", [(3, 37, 8, (3, 2)), (20, 5, 8, (8, 1)), (2, 5, 64, (2, 5))])
def test_3_chunk_plan_keeps_chains_within_the_batch(n, repeats, batch, plan):
    assert chunk_plan(n, repeats, batch) == plan
    assert plan[0] * plan[1] <= batch


def test_3_enhancer_samples_in_chunks_and_merges_exactly(model_dir, monkeypatch):
    """With 3 planes, 37 repeats and batch_size 8, no sampler run holds more than 8 chains, and the merged
    mean/std are those of all 37 samples drawn."""
    enhancer = Enhancer(model_dir, device="cpu")
    drawn, chains = [], []

    def fake_sample(predict, x, factors, *, repeats, generator, **kwargs):
        chains.append(x.shape[0] * repeats)
        z = torch.randn((x.shape[0], repeats) + tuple(x.shape[1:]), generator=generator, dtype=torch.float64)
        drawn.append(z)
        return z.mean(dim=1).float(), z.std(dim=1, unbiased=False).float()

    monkeypatch.setattr(enhancer.diffusion, "sample", fake_sample)
    x_lr = np.zeros((3, S, S), dtype=np.float32)
    mean, std = enhancer.sample(x_lr, 1.5, SampleConfig(steps=2, repeats=37, batch_size=8), progress=False)
    assert max(chains) <= 8 and sum(chains) == 3 * 37
    everything = torch.cat(drawn, dim=1).numpy()[:, :, 0]
    assert everything.shape == (3, 37, S, S)
    assert_allclose(mean, everything.mean(axis=1), atol=1e-6)
    assert_allclose(std, everything.std(axis=1), atol=1e-6)


# ---- 4, 5, 12: options and paths refused before the model (and torch) ---------------------------


@pytest.mark.parametrize("device", ["meta", "mps", "cuda:99", "gpu"])
def test_4_unusable_devices_exit_2(tmp_path, model_dir, capsys, device):
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    code, err = _run_cli(capsys, _enhance_args(_ucsf(tmp_path), model_dir, "--device", device))
    assert code == 2 and "device" in err and repr(device) in err, err


def test_4_unreadable_weights_exit_2(tmp_path, model_dir, capsys):
    broken = _edited_model(tmp_path, model_dir, lambda d: None)
    (broken / WEIGHTS_FILE).write_bytes(b"not safetensors at all")
    code, err = _run_cli(capsys, _enhance_args(_ucsf(tmp_path), broken))
    assert code == 2 and WEIGHTS_FILE in err, err


@pytest.mark.skipif(AS_ROOT, reason="root reads files whatever their mode")
def test_4_unreadable_input_exit_2(tmp_path, model_dir, capsys):
    path = _ucsf(tmp_path)
    path.chmod(0)
    for args in (_enhance_args(path, model_dir), ["info", str(path)]):
        code, err = _run_cli(capsys, args)
        assert code == 2 and "permission denied" in err and path.name in err, err


@pytest.mark.skipif(AS_ROOT, reason="root writes in read-only folders")
def test_4_read_only_output_folder_exit_2_before_sampling(tmp_path, model_dir, capsys, monkeypatch):
    path = _ucsf(tmp_path)
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    monkeypatch.setattr(Enhancer, "__init__", lambda *a, **k: pytest.fail("the model was loaded"))
    code, err = _run_cli(capsys, _enhance_args(path, model_dir, "-o", str(folder / "x.ucsf")))
    assert code == 2 and "-o" in err and "permission denied" in err, err


def test_5_unwritable_folder_is_found_by_a_probe(tmp_path, monkeypatch):
    """A read-only file system (what the probe file meets even as root) is named with the option."""
    import errno
    import tempfile

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(ValueError, match=r"output \(-o\): cannot write in .*read-only file system"):
        enhance_outputs.check_writable_directory(tmp_path / "new" / "deeper", "output (-o)")


def test_5_output_under_a_file_is_refused_naming_o_before_the_model(tmp_path, model_dir, capsys, monkeypatch):
    path = _ucsf(tmp_path)
    (tmp_path / "afile").write_text("x")
    monkeypatch.setattr(Enhancer, "__init__", lambda *a, **k: pytest.fail("the model was loaded"))
    code, err = _run_cli(capsys, _enhance_args(path, model_dir, "-o", str(tmp_path / "afile" / "out.ucsf")))
    assert code == 2 and "output (-o)" in err and "afile is a file" in err, err


def test_5_a_model_that_outputs_nan_is_named(tmp_path, capsys):
    model = _micro_model(tmp_path / "nan_model")
    from mssr.model.network import load_model

    unet, cfg, extra = load_model(model)
    with torch.no_grad():
        unet.conv_out.bias.fill_(float("nan"))
    save_model(unet, cfg, model, extra=extra)
    code, err = _run_cli(capsys, _enhance_args(_ucsf(tmp_path), model))
    assert code == 2 and "non-finite output" in err and str(model) in err, err
    assert not list(tmp_path.glob("hsqc_mssr900*"))


def test_12_bad_options_are_refused_without_importing_torch(tmp_path, model_dir):
    path = _ucsf(tmp_path)
    script = textwrap.dedent(f'''
        import sys
        from mssr.cli import main
        codes = [main(["enhance", {str(path)!r}, "--from-mhz", "400", "--to-mhz", "900", "--model", {str(model_dir)!r},
                       *extra]) for extra in (["--steps", "0"], ["--seed", str(2**70)], ["--device", "meta"],
                                              ["-o", {str(tmp_path / "x.txt")!r}])]
        codes.append(main(["enhance", {str(tmp_path / "missing.ucsf")!r}, "--from-mhz", "400", "--to-mhz", "900"]))
        assert codes == [2] * 5, codes
        assert "torch" not in sys.modules, "torch was imported"
    ''')
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert "--seed" in proc.stderr and "2**63" in proc.stderr and "Overflow" not in proc.stderr
    assert "Traceback" not in proc.stderr


# ---- 7, 8, 9, 10, 11: files and what is said about them ---------------------------------------


def test_7_a_fifo_is_refused_not_read_forever(tmp_path, model_dir, capsys):
    fifo = tmp_path / "spectrum.ucsf"
    os.mkfifo(fifo)
    for args in (_enhance_args(fifo, model_dir), ["info", str(fifo)]):
        code, err = _run_cli(capsys, args)
        assert code == 2 and "FIFO" in err and str(fifo) in err, err


def test_7_percent_in_an_existing_file_name_is_a_file(tmp_path, model_dir, capsys):
    path = io.write(_spectrum(), tmp_path / "hsqc_10%D2O.ft2")
    assert main(["info", str(path)]) == 0
    assert "pipe" in capsys.readouterr().out
    assert main(_enhance_args(path, model_dir)) == 0
    assert (tmp_path / "hsqc_10%D2O_mssr900.ft2").is_file()


def test_8_a_4d_with_two_carbon_axes_gets_distinct_projection_names(tmp_path, model_dir, capsys):
    spectrum = _spectrum((6, 8, 10, 32), nuclei=("13C", "13C", "15N", "1H"))
    path = io.write(spectrum, tmp_path / "noesy.ft4")
    assert main(_enhance_args(path, model_dir)) == 0
    names = sorted(p.name for p in tmp_path.glob("noesy_mssr900_*.ft2") if "_std" not in p.name)
    assert names == ["noesy_mssr900_13C-1H_axes0-3.ft2", "noesy_mssr900_13C-1H_axes1-3.ft2",
                     "noesy_mssr900_15N-1H.ft2"]
    # each holds the projection of its own carbon axis (signed max over the others)
    for name, kept in (("noesy_mssr900_13C-1H_axes0-3.ft2", 0), ("noesy_mssr900_13C-1H_axes1-3.ft2", 1)):
        assert io.read(tmp_path / name).shape == (spectrum.shape[kept], 32)


def test_9_weights_are_as_readable_as_the_config(tmp_path):
    directory = _micro_model(tmp_path / "m")
    umask = os.umask(0)
    os.umask(umask)
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        assert (directory / name).stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("nuclei", [("1H", "1H"), ("13C", "13C")])
def test_10_planes_unlike_the_training_data_carry_a_warning(tmp_path, model_dir, capsys, nuclei):
    path = io.write(_spectrum(nuclei=nuclei), tmp_path / "homo.ucsf")
    assert main(_enhance_args(path, model_dir)) == 0
    err = capsys.readouterr().err
    label = "-".join(nuclei)
    assert "warning" in err and label in err
    record = json.loads((tmp_path / "homo_mssr900.ucsf.json").read_text())
    assert any(label in w for w in record["warnings"])


def test_11_messages_name_the_real_problem(tmp_path, capsys):
    (tmp_path / "empty.ucsf").write_bytes(b"")
    (tmp_path / "loop.ucsf").symlink_to(tmp_path / "loop.ucsf")
    (tmp_path / "dangling.ucsf").symlink_to(tmp_path / "gone.ucsf")
    good = _ucsf(tmp_path)
    code = main(["info", str(tmp_path / "empty.ucsf"), str(tmp_path / "loop.ucsf"), str(tmp_path / "dangling.ucsf"),
                 str(good)])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 3 and "Traceback" not in captured.err
    assert "empty (0 bytes)" in lines[0]
    assert "symbolic link loop" in lines[1]
    assert "dangling symbolic link" in lines[2] and "gone.ucsf" in lines[2]
    assert str(good) in captured.out  # the good file after the bad ones is still described


def test_11_pseudo_3d_hint_names_plane_option(tmp_path, model_dir, capsys):
    """A series axis (a frequency that matches no nucleus) makes a pseudo-3D: the hint is --plane, not Python."""
    spectrum = _spectrum((6, 16, 32), nuclei=("15N", "15N", "1H"))
    series_axis = Axis("15N", 1.0, 600.0, 0.0, 6)  # 1 MHz: no nucleus at a 400 MHz magnet
    path = io.write(Spectrum(spectrum.data, (series_axis,) + spectrum.axes[1:]), tmp_path / "series.ucsf")
    code, err = _run_cli(capsys, _enhance_args(path, model_dir))
    assert code == 2 and "--plane INDEX (0..5)" in err and "iter_planes" not in err, err
    assert main(_enhance_args(path, model_dir, "--plane", "2")) == 0


# ---- the shipped (anchored) model and a plane without a line to measure ---------------------------


def test_a_plane_without_strong_isolated_peaks_is_refused_by_the_anchored_model(tmp_path, capsys):
    # the shipped model starts from the anchor (mssr.model.anchor), whose kernel comes from the
    # plane's own lines: pure noise has none, and enhance says so, naming the file, writing nothing
    from mssr.enhance.models import DEFAULT_MODEL_DIR

    extra = json.loads((DEFAULT_MODEL_DIR / CONFIG_FILE).read_text())["extra"]
    assert extra["native"].get("anchor"), "the shipped model is anchored"
    rng = np.random.default_rng(3)
    shape = (64, 96)
    axes = tuple(Axis.from_ppm_window(n, 600.0, *WINDOWS[n], size) for n, size in zip(("15N", "1H"), shape))
    path = io.write(Spectrum(rng.normal(0.0, 1.0, shape).astype(np.float32), axes), tmp_path / "noise.ucsf")
    before = _listing(tmp_path)
    code, err = _run_cli(capsys, ["enhance", str(path), "--from-mhz", "600", "--to-mhz", "900", "-q"])
    assert code == 2
    assert str(path) in err and "no strong peak" in err
    assert _listing(tmp_path) == before
