"""What OCI request signing costs per call: a signed request to the OCI stand-in against the same request unsigned to
the same server, with the same client, in one run.

    .venv/bin/python benchmarks/oci_signing_overhead.py [--calls 1000] [--rounds 3] [--json]

The stand-in runs once, with ``LASTMILE_OCI_STANDIN_ALLOW_UNSIGNED=1`` (the benchmark switch: requests carrying no
Authorization header are served unchecked; those that carry one are verified as always). One ``requests.Session``
(the SDK's own transport library) sends each request kind ``--calls`` times signed (``auth=`` the SDK's
``oci.signer.Signer``) and as many times unsigned, alternating per round, after a warm-up:

- GetObject of a 1 KiB object (GET: date, (request-target) and host signed);
- PutLogs with a 300-byte JSON body (POST: the body's SHA-256 and its headers signed too).

It prints the median latency per call of each, their ratio, and, measured in this process, what the two halves
cost alone: the client's signing (``Signer.__call__``) and the server's verification (``signatures.verify``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from support import REPO, free_port, run_benchmark

sys.path.insert(0, str(REPO))
LOG = "ocid1.log.oc1.iad.aaaaaaaabenchmark"


def timed(session, prepare, count: int) -> list[float]:
    took = []
    for _ in range(count):
        began = time.perf_counter()
        answer = session.send(prepare(), timeout=30)
        took.append(time.perf_counter() - began)
        if answer.status_code != 200:
            raise RuntimeError(f"{answer.request.method} {answer.request.url} answered {answer.status_code}: "
                               f"{answer.text[:300]}")
    return took


def measure(args, root: Path) -> dict:
    import oci
    import requests

    from adapters.oci.standin import register_log
    from adapters.oci.standin.testing import StandInProcess

    register_log(root, LOG, "ocid1.loggroup.oc1..bench", "ocid1.compartment.oc1..bench")
    with StandInProcess(free_port(), root, env={"LASTMILE_OCI_STANDIN_ALLOW_UNSIGNED": "1"}) as standin:
        key = standin.api_key
        signer = oci.signer.Signer(key.tenancy, key.user, key.fingerprint, str(key.key_file))
        client = oci.object_storage.ObjectStorageClient(standin.sdk_config(), service_endpoint=standin.url)
        client.create_bucket("lastmile", oci.object_storage.models.CreateBucketDetails(
            name="bench", compartment_id="ocid1.compartment.oc1..bench"))
        client.put_object("lastmile", "bench", "one-kib", b"x" * 1024)
        body = json.dumps({"specversion": "1.0", "logEntryBatches": [{
            "entries": [{"data": json.dumps({"event": "stage.started", "stage": "build", "run": "r" * 32}),
                         "id": "0" * 36, "time": "2026-01-01T00:00:00Z"}],
            "source": "lastmile", "type": "lastmile.stage", "subject": "benchmark"}]})
        kinds = {
            "GetObject (GET, 1 KiB)": lambda: requests.Request("GET", f"{standin.url}/n/lastmile/b/bench/o/one-kib"),
            "PutLogs (POST, body signed)": lambda: requests.Request(
                "POST", f"{standin.url}/20200831/logs/{LOG}/actions/push", data=body,
                headers={"content-type": "application/json"}),
        }
        results = {}
        with requests.Session() as session:
            def calls(kind, signed: bool, count: int) -> list[float]:
                return timed(session, lambda: _prepared(session, kind(), signer if signed else None), count)

            for name, kind in kinds.items():
                samples: dict[bool, list[float]] = {False: [], True: []}
                for signed in (False, True):  # warm-up
                    calls(kind, signed, 50)
                for _ in range(args.rounds):
                    for signed in (False, True):
                        samples[signed] += calls(kind, signed, args.calls)
                unsigned, signed_ms = (statistics.median(samples[s]) * 1000 for s in (False, True))
                results[name] = {"unsigned_ms": round(unsigned, 3), "signed_ms": round(signed_ms, 3),
                                 "ratio": round(signed_ms / unsigned, 2), "calls_each": args.calls * args.rounds}
        halves = _halves(standin, signer, kinds, session_factory=requests.Session)
    return {"requests": results, **halves, "load_average_at_start": args.load_average_at_start}


def _prepared(session, request, signer):
    prepared = session.prepare_request(request)
    return signer(prepared) if signer is not None else prepared


def _halves(standin, signer, kinds, session_factory, count: int = 2000) -> dict:
    """Client signing and server verification alone, in this process, for the body-signed request."""
    from adapters.oci.standin.keys import KeyRegistry
    from adapters.oci.standin.signatures import SignedRequest, verify

    with session_factory() as session:
        prepared = session.prepare_request(kinds["PutLogs (POST, body signed)"]())
    began = time.perf_counter()
    for _ in range(count):
        signed = signer(prepared.copy())
    signing_us = (time.perf_counter() - began) / count * 1e6
    target = signed.path_url
    headers = {k.lower(): v for k, v in signed.headers.items()}
    headers["host"] = f"127.0.0.1:{standin.port}"
    request = SignedRequest("POST", target, headers, signed.body.encode() if isinstance(signed.body, str)
                            else signed.body)
    keys = KeyRegistry(standin.state)
    verify(request, keys, True)
    began = time.perf_counter()
    for _ in range(count):
        verify(request, keys, True)
    verifying_us = (time.perf_counter() - began) / count * 1e6
    return {"client_signing_us": round(signing_us, 1), "server_verification_us": round(verifying_us, 1)}


def render(summary: dict) -> str:
    lines = [f"{'request':<30} {'unsigned ms':>12} {'signed ms':>10} {'ratio':>6}  calls each"]
    for name, row in summary["requests"].items():
        lines.append(f"{name:<30} {row['unsigned_ms']:>12.3f} {row['signed_ms']:>10.3f} {row['ratio']:>6.2f}  "
                     f"{row['calls_each']}")
    lines.append(f"client signing alone (Signer, POST with body): {summary['client_signing_us']} µs per request")
    lines.append(f"server verification alone (signatures.verify): {summary['server_verification_us']} µs per request")
    lines.append(f"load average at start: {summary['load_average_at_start']}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="timed calls per kind, signing and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, alternating unsigned and signed")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary state directory")
    return run_benchmark(parser.parse_args(), "lastmile-oci-signing-", measure, render,
                         lambda line: print(line, file=sys.stderr))


if __name__ == "__main__":
    sys.exit(main())
