"""The ``mssr`` command line: Table 1, spectrum file information, and enhancing a spectrum file."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys

from mssr.model import SAMPLERS


def _cmd_factors(args) -> int:
    from mssr.factors import format_table1

    print(format_table1())
    return 0


def _cmd_info(args) -> int:
    from mssr.io import info

    failed = 0
    for path in args.files:
        try:
            text = info(path)
        except USER_ERRORS as exc:
            failed += 1
            print(f"mssr info: error: {_message(exc)}", file=sys.stderr)
            continue
        print(f"{path}\n{text}\n")
    return 2 if failed else 0


def _check_enhance_options(args) -> None:
    """The options alone, before the imports of the reading and sampling code (seconds on a busy machine)."""
    from mssr.enhance.options import (sample_config, validate_count, validate_experiment_option, validate_fields,
                                      validate_network_weight_option, validate_plane)

    validate_fields(args.from_mhz, args.to_mhz)
    sample_config(sampler=args.sampler, steps=args.steps, repeats=args.repeats, fast=args.fast, seed=args.seed,
                  device=args.device)
    validate_plane(args.plane)
    validate_experiment_option(args.experiment)
    validate_network_weight_option(args.network_weight)
    validate_count("threads", "--threads", args.threads)
    if not os.path.lexists(args.input) and "%" not in os.path.basename(args.input):  # no file, no template
        raise FileNotFoundError(errno.ENOENT, "no such spectrum file or directory", args.input)
    from mssr.enhance.models import model_dir_of

    model_dir_of(args.model)


def _cmd_enhance(args) -> int:
    _check_enhance_options(args)
    from mssr.enhance.run import enhance

    result = enhance(
        args.input,
        from_mhz=args.from_mhz,
        to_mhz=args.to_mhz,
        model_dir=args.model,
        output=args.output,
        sampler=args.sampler,
        steps=args.steps,
        repeats=args.repeats,
        fast=args.fast,
        paper=args.paper,
        device=args.device,
        seed=args.seed,
        plane=args.plane,
        projection=args.projection,
        experiment=args.experiment,
        network_weight=args.network_weight,
        plot=args.plot,
        force=args.force,
        threads=args.threads,
        progress=not args.quiet,
    )
    for key, value in result.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value) if value else "-"
        print(f"{key}: {value}")
    for warning in result.get("warnings", []):
        print(f"mssr enhance: warning: {warning}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mssr", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("factors", help="print the paper's Table 1 recomputed (field pairs and factors)")
    p.set_defaults(func=_cmd_factors)

    p = sub.add_parser("info", help="shape, nuclei, MHz and ppm limits of spectrum files")
    p.add_argument("files", nargs="+", help="UCSF, NMRPipe or Bruker pdata paths")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser(
        "enhance", help="estimate the high-field spectrum of a low-field spectrum file",
        description="Estimate the high-field spectrum of a low-field UCSF, NMRPipe or Bruker spectrum with a "
        "trained MSSR model. Writes the estimate (input's format; NMRPipe for Bruker), its per-pixel "
        "uncertainty (<stem>_std<ext>) and a JSON record of what was done (<output>.json). 3D/4D input: one "
        "output per 2D projection. Sampling: the model's own default (the shipped native model: its validated "
        "few-step DDPM); --paper gives the paper protocol (ddpm, 500 steps x 5 repeats).",
    )
    p.add_argument("input", help="UCSF file, NMRPipe file or series, or Bruker processed data (procno directory)")
    p.add_argument("--from-mhz", type=float, required=True,
                   help="1H frequency the input was recorded at, MHz (checked against the file's header)")
    p.add_argument("--to-mhz", type=float, required=True, help="1H frequency to estimate, MHz (see `mssr factors`)")
    p.add_argument("--model", default=None,
                   help="model directory (model.safetensors + config.json); default: the shipped model")
    p.add_argument("-o", "--output", default=None,
                   help="output file; its suffix picks the format (.ucsf, .ft2, ...). Default: next to the input, "
                   "<stem>_mssr<to-mhz><ext>")
    p.add_argument("--force", action="store_true", help="replace existing outputs (the input is never replaced)")
    p.add_argument("--sampler", choices=list(SAMPLERS), default=None,
                   help="default: the model's own (native models: their validated few-step ddpm; others: "
                   "the paper's ddpm)")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (paper: 500)")
    p.add_argument("--repeats", type=int, default=None,
                   help="samples averaged (paper: 5; at most 10000, sampled in batches)")
    p.add_argument("--fast", action="store_true",
                   help="models on the paper's S x S grid: ddpm from the input noised to t=200 (10 network calls) "
                   "x 2 repeats; native models: their default")
    p.add_argument("--paper", action="store_true",
                   help="the paper's protocol: ddpm, 500 steps from pure noise, 5 repeats (slow; the reference the "
                   "defaults were checked against)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads of torch (default: one per core; use fewer on a busy machine)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler's noise")
    p.add_argument("--plane", type=int, default=None,
                   help="index of the spectrum to enhance in a pseudo-3D/4D series (relaxation, titration)")
    p.add_argument("--projection", choices=["sum", "max", "signed_max"], default="signed_max",
                   help="how 3D/4D input is projected to 2D (as the model's training data; default signed_max)")
    p.add_argument("--experiment", default="auto", type=str.lower, choices=["auto", "fixed", "hsqc", "trosy"],
                   help="how the 15N lines change with the field (native model's anchor): hsqc (they grow in Hz, "
                        "CSA), trosy (they narrow in Hz up to ~1 GHz), fixed (widths fixed in Hz); auto: the "
                        "file's pulse program where it names one (Bruker), else fixed")
    p.add_argument("--network-weight", type=float, default=None,
                   help="native model: weight of the network's correction of its classical anchor, 0-1 (0: the "
                        "anchor alone, nothing sampled; 1: the network's estimate). Default: the model's own "
                        "(the shipped model's depends on the field ratio, see README)")
    p.add_argument("--plot", action="store_true", help="also write <stem>.png: input, estimate and uncertainty")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_enhance)
    return parser


USER_ERRORS = (ValueError, TypeError, OSError)
"""What a bad file, option or path raises (OSError covers missing, unreadable and unwritable paths):
one line and exit code 2, never a traceback."""


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def main(argv=None) -> int:
    """Run the command line; return the exit code (0 done, 2 bad input, 130/143 interrupted by SIGINT/SIGTERM)."""
    from mssr.atomic import Interrupted, interruptible

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        with interruptible():
            return args.func(args)
    except Interrupted as exc:
        print(f"mssr {args.command}: {exc}; nothing of this run was written (exit {exc.exit_code})", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # outside the main thread's handler (e.g. before it was installed)
        print(f"mssr {args.command}: interrupted; nothing of this run was written", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        print(f"mssr {args.command}: error: {_message(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
