"""``python -m adapters.oci.standin --host 127.0.0.1 --port PORT --state DIR``: the OCI API stand-in.

Also, against a state directory (running server or not):

- ``keys register --state DIR --public-key FILE --tenancy OCID --user OCID``: accept an API signing key;
- ``keys generate --state DIR --dir DIR [--tenancy OCID --user OCID --region R]``: a key pair and an SDK config file;
- ``s3-keys generate --state DIR [--tenancy OCID --user OCID]``: a customer secret key for the S3 API (JSON out);
- ``secrets put --state DIR --name N --vault-id OCID --value-file FILE``: create or rotate a secret;
- ``logs register --state DIR --log-id OCID --log-group-id OCID --compartment-id OCID``: accept PutLogs for a log;
- ``datascience drill --state DIR [--fail-exit-code N] [--hang] [--throttle OPERATION ...]``: set the Data Science
  drill switches (none given: all off), see :mod:`adapters.oci.standin.datascience`.

Data Science job runs (``--jobs-dir`` the lastmile state dir whose ``jobs/`` holds them; ``--registry-username`` and
``--registry-password-secret``, the Vault secret with the OCIR stand-in's password; ``--minute-seconds`` shortens
``maximumRuntimeInMinutes`` for tests).

Logs are lastmile's JSON lines on stderr. ``LASTMILE_OCI_STANDIN_ALLOW_UNSIGNED=1`` (benchmarks only) serves
requests that carry no Authorization header unchecked.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

LOOPBACK = "127.0.0.1"
ALLOW_UNSIGNED = "LASTMILE_OCI_STANDIN_ALLOW_UNSIGNED"
PROG = "python -m adapters.oci.standin"


def serve(argv: list[str]) -> int:
    from .keys import DEFAULT_REGION, DEFAULT_TENANCY

    parser = argparse.ArgumentParser(prog=PROG, description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--host", default=LOOPBACK, help="only 127.0.0.1 is allowed")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True, help="keys, objects, secrets and logs live here")
    parser.add_argument("--namespace", default="lastmile", help="the Object Storage namespace it serves")
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--s3-compartment-id", default=DEFAULT_TENANCY,
                        help="where buckets created through the S3 compatibility API go")
    parser.add_argument("--jobs-dir", type=Path, help="the lastmile state dir: Data Science job runs go in its jobs/")
    parser.add_argument("--registry-username", default="", help="the OCIR stand-in's login for pulling job images")
    parser.add_argument("--registry-password-secret", default="",
                        help="the name of the Vault secret (in this stand-in) holding that login's password")
    parser.add_argument("--minute-seconds", type=float, default=60.0,
                        help="how long a minute of a job run's maximumRuntimeInMinutes lasts (tests only)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    if args.host not in (LOOPBACK, "localhost"):
        print(f"oci-standin: refusing --host {args.host}: the stand-in listens on {LOOPBACK} only", file=sys.stderr)
        return 2

    import uvicorn

    from harness.infra import logs

    from .app import Settings, create_app

    logs.configure(args.log_level.upper(), static={"service": "oci-standin"})
    allow_unsigned = os.environ.get(ALLOW_UNSIGNED) == "1"
    args.state.mkdir(parents=True, exist_ok=True)
    settings = Settings(args.state, args.namespace, args.region, args.s3_compartment_id, allow_unsigned=allow_unsigned,
                        jobs_dir=args.jobs_dir, registry_username=args.registry_username,
                        registry_password_secret=args.registry_password_secret, minute_s=args.minute_seconds)
    log = logging.getLogger("lastmile.oci_standin")
    if allow_unsigned:
        log.warning("unsigned requests are served unchecked (benchmark switch)", extra={"fields": {"env": ALLOW_UNSIGNED}})
    log.info("oci stand-in starting", extra={"fields": {"port": args.port, "state": str(args.state),
                                                        "namespace": args.namespace}})
    config = uvicorn.Config(create_app(settings), host=LOOPBACK, port=args.port, log_config=None,
                            log_level=args.log_level, access_log=False, lifespan="off", timeout_graceful_shutdown=5)
    uvicorn.Server(config).run()
    return 0


def admin(argv: list[str]) -> int:
    from . import datascience, keys, logging_api, vault

    parser = argparse.ArgumentParser(prog=PROG)
    groups = parser.add_subparsers(dest="group", required=True)
    key_commands = groups.add_parser("keys").add_subparsers(dest="command", required=True)
    register = key_commands.add_parser("register", help="accept requests signed with this public key")
    register.add_argument("--public-key", type=Path, required=True)
    generate = key_commands.add_parser("generate", help="a key pair and an SDK config file in --dir")
    generate.add_argument("--dir", type=Path, required=True)
    generate.add_argument("--region", default=keys.DEFAULT_REGION)
    s3_generate = groups.add_parser("s3-keys").add_subparsers(dest="command", required=True).add_parser("generate")
    secret_put = groups.add_parser("secrets").add_subparsers(dest="command", required=True).add_parser("put")
    secret_put.add_argument("--name", required=True)
    secret_put.add_argument("--vault-id", required=True)
    secret_put.add_argument("--value-file", type=Path, required=True, help="the value's bytes (never on the command line)")
    log_register = groups.add_parser("logs").add_subparsers(dest="command", required=True).add_parser("register")
    log_register.add_argument("--log-id", required=True)
    log_register.add_argument("--log-group-id", required=True)
    log_register.add_argument("--compartment-id", required=True)
    drill = groups.add_parser("datascience").add_subparsers(dest="command", required=True).add_parser(
        "drill", help="set the Data Science drill switches; none given: all off")
    drill.add_argument("--fail-exit-code", type=int)
    drill.add_argument("--hang", action="store_true")
    drill.add_argument("--throttle", nargs="*", default=[], choices=datascience.OPERATIONS)
    for sub in (register, generate, s3_generate, secret_put, log_register, drill):
        sub.add_argument("--state", type=Path, required=True)
    for sub in (register, generate, s3_generate):
        sub.add_argument("--tenancy", default=keys.DEFAULT_TENANCY)
        sub.add_argument("--user", default=keys.DEFAULT_USER)
    args = parser.parse_args(argv)

    try:
        if args.group == "keys" and args.command == "register":
            result: dict = {"fingerprint": keys.register_key(args.state, args.public_key.read_bytes(), args.tenancy,
                                                             args.user)}
        elif args.group == "keys":
            key = keys.ensure_api_key(args.dir, args.state, args.tenancy, args.user, args.region)
            result = {"config_file": str(key.config_file), "fingerprint": key.fingerprint, "key_id": key.key_id}
        elif args.group == "s3-keys":
            s3 = keys.ensure_customer_secret_key(args.state, args.tenancy, args.user)
            result = {"access_key_id": s3.access_key_id, "secret_key": s3.secret_key}
        elif args.group == "secrets":
            record = vault.put_secret(args.state, args.name, args.vault_id, args.value_file.read_bytes())
            result = {"id": record["id"], "name": record["name"], "version": record["versions"][-1]["versionNumber"]}
        elif args.group == "datascience":
            result = datascience.set_drills(args.state, args.fail_exit_code, args.hang, args.throttle)
        else:
            logging_api.register_log(args.state, args.log_id, args.log_group_id, args.compartment_id)
            result = {"log_id": args.log_id}
    except (OSError, ValueError) as exc:
        print(f"oci-standin: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("keys", "s3-keys", "secrets", "logs", "datascience"):
        return admin(argv)
    return serve(argv)


if __name__ == "__main__":
    sys.exit(main())
