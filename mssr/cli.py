"""The ``mssr`` command line: Table 1, spectrum file information, and enhancing a spectrum file."""

from __future__ import annotations

import argparse
import logging
import sys


def _cmd_factors(args) -> int:
    from mssr.factors import format_table1

    print(format_table1())
    return 0


def _cmd_info(args) -> int:
    from mssr.io import info

    for path in args.files:
        print(f"{path}\n{info(path)}\n")
    return 0


def _cmd_enhance(args) -> int:
    from mssr.enhance import enhance

    result = enhance(
        args.input,
        from_mhz=args.from_mhz,
        to_mhz=args.to_mhz,
        model_dir=args.model,
        output=args.output,
        sampler=args.sampler,
        steps=args.steps,
        repeats=args.repeats,
        device=args.device,
        seed=args.seed,
        plot=args.plot,
        fast=args.fast,
    )
    for key, value in result.items():
        print(f"{key}: {value}")
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

    p = sub.add_parser("enhance", help="estimate the high-field spectrum of a low-field spectrum file")
    p.add_argument("input", help="UCSF, NMRPipe or Bruker processed-data path")
    p.add_argument("--from-mhz", type=float, required=True, help="1H frequency the input was recorded at, MHz")
    p.add_argument("--to-mhz", type=float, required=True, help="1H frequency to estimate, MHz")
    p.add_argument("--model", default=None,
                   help="model directory (model.safetensors + config.json); default: results/demo/models/mssr")
    p.add_argument("-o", "--output", default=None, help="output path (default: next to the input, suffix _mssr<MHz>)")
    p.add_argument("--sampler", choices=["ddpm", "ddim", "dpmsolver"], default=None, help="default: the paper's ddpm")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (paper: 500)")
    p.add_argument("--repeats", type=int, default=None, help="samples averaged (paper: 5)")
    p.add_argument("--fast", action="store_true", help="DPM-Solver++ with 20 steps x 2 repeats")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", action="store_true", help="also write a PNG of input, output and uncertainty")
    p.set_defaults(func=_cmd_enhance)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as exc:
        print(f"mssr {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
