"""The `jaxdyn` command line: `jaxdyn info`, `jaxdyn demo`.

User errors (a bad flag, an unwritable folder) exit with code 2 and one readable line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


class _UserError(Exception):
    """An error caused by the command line or the environment, reported in one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        raise _UserError(message)


def _cmd_info(args) -> int:
    import jax

    import jaxdyn

    versions = {"jaxdyn": jaxdyn.__version__, "python": sys.version.split()[0]}
    for name in ("jax", "jaxlib", "equinox", "diffrax", "optimistix", "lineax", "optax",
                 "numpy", "matplotlib"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:
            versions[name] = "not installed"
    info = {
        "versions": versions,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "x64": bool(jax.config.jax_enable_x64),
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in versions.items():
            print(f"{k:>12}: {v}")
        print(f"{'backend':>12}: {info['backend']}")
        print(f"{'devices':>12}: {', '.join(info['devices'])}")
        print(f"{'x64':>12}: {info['x64']}")
    return 0


def _cmd_demo(args) -> int:
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _UserError(f"cannot create output folder {str(out)!r}: {e.strerror}") from None
    if not os.access(out, os.W_OK):
        raise _UserError(f"output folder {str(out)!r} is not writable")
    existing = [name for name in ("demo.png", "summary.json") if (out / name).exists()]
    if existing and not args.force:
        raise _UserError(f"{str(out)!r} already holds {' and '.join(existing)} from an earlier "
                         f"run; pass --force to replace them, or choose another --out")
    from ._demo import run_demo

    summary = run_demo(out, n_hidden=args.n_hidden, g=args.g, seed=args.seed,
                       n_traj=args.n_traj)
    print(json.dumps(summary, indent=2))
    print(f"wrote {out / 'demo.png'} and {out / 'summary.json'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="jaxdyn",
        description="Train recurrent networks on cognitive tasks and reverse-engineer their "
        "dynamics, in JAX.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    p_info = sub.add_parser("info", help="versions, devices and the x64 setting")
    p_info.add_argument("--json", action="store_true", help="print as JSON")
    p_info.set_defaults(func=_cmd_info)
    p_demo = sub.add_parser(
        "demo",
        help="build a random RNN, simulate it and analyse it; writes a figure and a summary",
    )
    p_demo.add_argument("--out", default="jaxdyn-demo", help="output folder (default: %(default)s)")
    p_demo.add_argument("--n-hidden", type=int, default=64, help="units (default: %(default)s)")
    p_demo.add_argument("--g", type=float, default=1.5,
                        help="recurrent gain (default: %(default)s)")
    p_demo.add_argument("--n-traj", type=int, default=8, help="trajectories (default: %(default)s)")
    p_demo.add_argument("--seed", type=int, default=0, help="PRNG seed (default: %(default)s)")
    p_demo.add_argument("--force", action="store_true",
                        help="replace demo.png and summary.json if --out already has them")
    p_demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `jaxdyn` console command."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.version:
            import jaxdyn

            print(jaxdyn.__version__)
            return 0
        if args.command is None:
            parser.print_help()
            return 0
        for name in ("n_hidden", "n_traj"):
            if getattr(args, name, 1) < 1:
                raise _UserError(f"--{name.replace('_', '-')} must be >= 1; got "
                                 f"{getattr(args, name)}")
        return args.func(args)
    except _UserError as e:
        print(f"jaxdyn: error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # a jaxdyn argument check: one line, not a traceback
        print(f"jaxdyn: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
