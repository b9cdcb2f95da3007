"""``python -m adapters.shared.bundle_push``: build one deployable's bundle and push it by digest, from a shell.

What a build runner (``build_spec.yaml`` on OCI DevOps, or its stand-in) calls in a checkout of the commit: the
same :func:`~harness.infra.bundle.build_bundle` as the local ImageBuilder, against any Distribution registry
(OCIR), so a tree gives the same digest wherever it is built. The password comes from the environment variable
named by ``--password-env`` (a DevOps ``vaultVariable``), never from the command line. Prints one JSON object
(``name``, ``ref``, ``digest``, ``source_digest``, ``pushed``) and writes it to ``--output`` when given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapters.shared.bundle_push", description=__doc__.split("\n")[0])
    parser.add_argument("--name", required=True, help="the deployable: training or serving")
    parser.add_argument("--context", type=Path, help="its directory (default: ./NAME)")
    parser.add_argument("--registry", required=True, help="the registry's URL (https://fra.ocir.io)")
    parser.add_argument("--repository-prefix", default="lastmile", help="<namespace>/lastmile on OCIR")
    parser.add_argument("--username", required=True, help="<namespace>/<user> on OCIR")
    parser.add_argument("--password-env", default="OCIR_AUTH_TOKEN", help="the variable that holds the auth token")
    parser.add_argument("--output", type=Path, help="also write the JSON result to this file")
    args = parser.parse_args(argv)
    password = os.environ.get(args.password_env)
    if not password:
        print(f"bundle_push: ${args.password_env} is empty; the auth token comes from the environment", file=sys.stderr)
        return 2

    from harness.domain.errors import LastmileError
    from harness.domain.records import Secret
    from harness.infra.bundle import build_bundle

    from .distribution import DistributionRegistry

    prefix = args.repository_prefix.strip("/")
    repository = f"{prefix}/{args.name}" if prefix else args.name
    try:
        registry = DistributionRegistry(args.registry, args.username, Secret(password), f"${args.password_env}")
        built = build_bundle(registry, args.name, args.context or Path(args.name), repository)
    except LastmileError as exc:
        print(f"bundle_push: {exc}", file=sys.stderr)
        return 1
    result = {"name": built.name, "ref": str(built.artifact), "digest": built.artifact.digest,
              "source_digest": built.source_digest, "pushed": built.pushed}
    text = json.dumps(result)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
