"""List the study configs shipped with paddle_dx, or print one to start your own from.

paddle_dx configs                  # name and one-line description of each
paddle_dx configs demo > my.yaml   # the YAML of one, to edit; then: paddle_dx train -c my.yaml
Any command's `-c NAME` (no folder, no .yaml) uses the shipped config NAME; a real file wins.
"""

import argparse
from collections.abc import Sequence


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", nargs="?", default=None, help="print this config's YAML")
    parser.add_argument("--path", action="store_true", help="print the folder the shipped configs are in")
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    args = build_parser(prog).parse_args(argv)
    from paddle_dx.config.shipped import configs_dir, describe, shipped_configs
    from paddle_dx.errors import ConfigError
    from paddle_dx.utils.registry import Registry

    shipped = shipped_configs()
    if args.path:
        print(configs_dir())
    elif args.name:
        if args.name not in shipped:
            raise ConfigError(
                f"no shipped config '{args.name}'{Registry.suggest(args.name, shipped)}; shipped: {', '.join(shipped)}"
            )
        print(shipped[args.name].read_text(encoding="utf-8"), end="")
    else:
        width = max(map(len, shipped))
        for name, path in shipped.items():
            print(f"{name:<{width}}  {describe(path)}")
