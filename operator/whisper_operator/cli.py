"""``whisper-operator``: ``render`` previews the manifests for WhisperEndpoint files, ``run`` starts the operator."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from typing import Any, Iterable, Optional, Sequence, TextIO

import yaml

from .errors import InvalidSpec
from .rbac import policy_rules
from .render import render_inference_service
from .resources import WHISPER_ENDPOINT
from .settings import OperatorConfig
from .spec import Endpoint

PEERING_NAME = "whisper-operator"


def peering_priority(pod_name: str) -> int:
    """A stable priority per replica: kopf pauses lower priorities, but freezes replicas of EQUAL priority."""
    return int.from_bytes(hashlib.sha256(pod_name.encode()).digest()[:4], "big") % (2**31 - 1) + 1


def _endpoints(documents: Iterable[Any]) -> Iterable[dict[str, Any]]:
    for document in documents:
        if isinstance(document, dict) and document.get("kind") == WHISPER_ENDPOINT.kind:
            yield document


def _read(path: str) -> list[Any]:
    if path == "-":
        return list(yaml.safe_load_all(sys.stdin))
    with open(path, encoding="utf-8") as stream:
        return list(yaml.safe_load_all(stream))


def render_files(paths: Sequence[str], config: OperatorConfig, out: TextIO) -> int:
    manifests = []
    for path in paths:
        for body in _endpoints(_read(path)):
            try:
                manifests.append(render_inference_service(Endpoint.from_body(body), config))
            except InvalidSpec as error:
                print(f"{path}: {body['metadata'].get('name')}: invalid spec: {error}", file=sys.stderr)
                return 1
    if not manifests:
        print(f"no {WHISPER_ENDPOINT.kind} in {', '.join(paths)}", file=sys.stderr)
        return 1
    yaml.safe_dump_all(manifests, out, sort_keys=False)
    return 0


def run_operator(args: argparse.Namespace, config: OperatorConfig) -> int:
    import kopf  # the operator's runtime dependencies load only for `run`

    from .handlers import RECONCILE_THREADS, build_registry, configure
    from .kube import KubeCluster

    kopf.configure(debug=args.log_level == "debug", quiet=args.log_level == "warning")
    settings = kopf.OperatorSettings()
    configure(settings)
    pod_name = os.environ.get("POD_NAME", "")
    peering = {} if args.standalone else {"peering_name": PEERING_NAME, "priority": peering_priority(pod_name)}
    if pod_name and not args.standalone:
        # A restarted container keeps its pod's name, so it recognises its own entry left in the peering object
        # by its killed predecessor; with kopf's random identity it would see a same-priority rival and pause
        # until that entry expires (60 s).
        peering["identity"] = pod_name
    settings.peering.mandatory = not args.standalone
    kopf.run(
        registry=build_registry(config, KubeCluster(connections=RECONCILE_THREADS)),
        settings=settings,
        standalone=args.standalone,
        clusterwide=args.all_namespaces,
        namespaces=args.namespace or (),
        liveness_endpoint=args.liveness,
        **peering,
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="whisper-operator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="print the manifests the operator would apply (no cluster)")
    render.add_argument("-f", "--filename", action="append", required=True, help="WhisperEndpoint YAML ('-': stdin)")
    run = commands.add_parser("run", help="start the operator")
    scope = run.add_mutually_exclusive_group(required=True)
    scope.add_argument("--namespace", action="append", help="watch this namespace (repeatable)")
    scope.add_argument("--all-namespaces", action="store_true", help="watch the whole cluster")
    run.add_argument("--liveness", help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    run.add_argument("--log-level", choices=("debug", "info", "warning"), default="info", help="kopf's log level")
    run.add_argument(
        "--standalone",
        action="store_true",
        help="one replica, no peering (without it, replicas elect by kopf peering with a priority from POD_NAME)",
    )
    rbac = commands.add_parser("rbac", help="print the RBAC rules the operator needs")
    rbac.add_argument("--no-peering", action="store_true", help="leave out kopf's peering objects")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    config = OperatorConfig.from_env()
    if args.command == "render":
        return render_files(args.filename, config, sys.stdout)
    if args.command == "rbac":
        yaml.safe_dump(policy_rules(peering=not args.no_peering), sys.stdout, sort_keys=False)
        return 0
    return run_operator(args, config)


if __name__ == "__main__":
    sys.exit(main())
