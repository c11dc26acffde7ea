"""`gliomask config`: every training and prediction setting with its default and meaning."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("config", help="list every config key (section.key=value overrides) with default and help",
                       description="Every key that `gliomask train` accepts as section.key=value or in a --config "
                                   "YAML file, with its default and what it does.")
    p.add_argument("--yaml", action="store_true", help="print the defaults as a YAML file to edit instead")
    p.set_defaults(func=run)


def run(args) -> int:
    import yaml

    from gliomask.config import Config, describe_keys

    if args.yaml:
        print(yaml.safe_dump(Config().to_dict(), sort_keys=False), end="")
        return 0
    rows = describe_keys()
    width = max(len(f"{key}={_show(default)}") for key, default, _ in rows)
    for key, default, text in rows:
        print(f"{key}={_show(default)}".ljust(width + 2) + text)
    return 0


def _show(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value).replace(" ", "")
