"""The operator at scale: N WhisperEndpoints on the local control plane (whisper_devkit.operator_scale).

Starts the local control plane (etcd, kube-apiserver with an audit log of the operator's requests,
controller-manager, scheduler, kwok, KServe's real controller), installs the chart, adds kwok H100 nodes with
GPU Feature Discovery labels for one GPU per endpoint, runs the operator as the chart's ServiceAccount, then
measures creation, readiness, resources, API requests and a restart's resync. Prints a Markdown table and
writes the whole record (every endpoint's latencies included) as JSON.

    python bench/operator_scale.py --endpoints 500 --out operator_scale.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

from whisper_devkit import binaries
from whisper_devkit.cluster import LocalCluster
from whisper_devkit.demo import OPERATOR_USER
from whisper_devkit.operator_scale import failure_context, measure, scale_setup, table

NAMESPACE = "scale"


def machine() -> dict:
    return {"cpus": os.cpu_count(), "load_average_1_5_15": [round(load, 2) for load in os.getloadavg()],
            "platform": platform.platform(), "python": platform.python_version()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoints", type=int, default=500, help="WhisperEndpoints to create (default 500)")
    parser.add_argument("--out", type=Path, default=Path("operator_scale.json"), help="the JSON record")
    parser.add_argument("--resync-seconds", type=float, default=60.0,
                        help="the operator's resync interval (default 60, the chart's)")
    parser.add_argument("--ready-timeout", type=float, default=1200.0, help="seconds to wait for every Ready")
    args = parser.parse_args(argv)

    binaries.ensure_built()
    started = datetime.datetime.now(datetime.timezone.utc)
    before = machine()
    with tempfile.TemporaryDirectory(prefix="operator-scale-") as work_dir, \
            LocalCluster(work_dir=Path(work_dir) / "cluster", audited_users=[OPERATOR_USER]) as cluster, \
            scale_setup(cluster, args.endpoints, args.resync_seconds, Path(work_dir) / "operator.log") as operator:
        cluster.kubectl("create", "namespace", NAMESPACE)
        try:
            record = measure(cluster, operator, OPERATOR_USER, NAMESPACE, args.endpoints,
                             ready_timeout=args.ready_timeout)
        except Exception:
            print(failure_context(operator, cluster), file=sys.stderr)
            raise
    record = {"date": started.isoformat(timespec="seconds"), "machine_before": before, "machine_after": machine(),
              "resync_seconds": args.resync_seconds, **record}
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(table(record))
    print(f"\nmachine: {before['cpus']} CPUs, load average before {before['load_average_1_5_15']}, "
          f"after {record['machine_after']['load_average_1_5_15']}; record: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
