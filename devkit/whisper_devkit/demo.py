"""``whisper-devkit demo``: the whole product on this machine, no GPU and no containers.

A local control plane with simulated GPU nodes, ``helm install`` of the chart, the operator (as the chart's
ServiceAccount), ``kubectl apply`` of the example WhisperEndpoint, then the runtime on CPU with the arguments of
the scheduled predictor pod and the real tiny.en weights, transcribing real speech through KServe v2 REST and
gRPC. Everything it starts is stopped and its temporary files removed, also on Ctrl-C or failure.

The chart and operator helpers here are the ones the end-to-end tests use too (tests/e2e/operator_harness.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np

from whisper_runtime import contract

from . import binaries, models, speech
from .cluster import LocalCluster, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "whisper-operator"
EXAMPLE = REPO_ROOT / "examples" / "whisper-endpoint.yaml"
RELEASE = "whisper"
OPERATOR_NAMESPACE = "whisper-system"
#: The chart names its objects "whisper-operator" for release "whisper" (see its _helpers.tpl).
OPERATOR_SERVICE_ACCOUNT = OPERATOR_DEPLOYMENT = "whisper-operator"
#: The user the API server sees for the operator's requests (it runs with that ServiceAccount's token).
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"
DEMO_NAMESPACE = "speech"
ENDPOINT = "whisper"
DEMO_MODEL = "tiny.en"
#: What a CPU needs instead of the GPU settings the operator chose (fp8, compile, CUDA graphs are GPU-only).
CPU_OVERRIDES = {"engine": "transformers", "dtype": "float32"}
RUNTIME_READY_TIMEOUT_SECONDS = 300


def terminate(process: subprocess.Popen, grace_seconds: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not exited within the grace period."""
    process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- the chart and the operator, shared with tests/e2e ------------------------------------------------------------


def install_chart(cluster: LocalCluster, *helm_args: str) -> None:
    """``helm install`` into a namespace that enforces Pod Security "restricted", waiting for the Deployment
    (kwok marks its pod Running; nothing runs in it)."""
    namespace = {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": OPERATOR_NAMESPACE,
                              "labels": {"pod-security.kubernetes.io/enforce": "restricted",
                                         "pod-security.kubernetes.io/enforce-version": "latest"}}}
    cluster.apply(namespace)
    cluster.helm("install", RELEASE, str(CHART), "--namespace", OPERATOR_NAMESPACE, "--wait", "--timeout=120s",
                 *helm_args)


def chart_operator_env(cluster: LocalCluster) -> dict[str, str]:
    """The literal env values the chart gives the operator container (WHISPER_RUNTIME_NAME, the endpoint policy)."""
    deployment = json.loads(cluster.kubectl("get", "deployment", OPERATOR_DEPLOYMENT, "-n", OPERATOR_NAMESPACE,
                                            "-o", "json").stdout)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return {variable["name"]: variable["value"] for variable in container.get("env", []) if "value" in variable}


def uninstall_chart(cluster: LocalCluster) -> None:
    cluster.helm("uninstall", RELEASE, "--namespace", OPERATOR_NAMESPACE, "--wait", "--timeout=120s")


class OperatorProcess:
    """``whisper-operator run --all-namespaces`` on this machine as the chart's ServiceAccount (so every call is
    checked against the chart's RBAC) and with the env the chart gives its container; killable and restartable.

    It takes part in kopf peering through the chart's ClusterKopfPeering like a chart replica would. The chart's
    own operator pod never competes with it: kwok marks that pod Running but runs no process in it, so it never
    joins the peering. POD_NAME is fixed, as a restarted container keeps its pod's name.
    """

    POD_NAME = "whisper-operator-local"

    def __init__(self, cluster: LocalCluster, log_path: Path, resync_seconds: float = 10.0):
        kubeconfig = cluster.kubeconfig_for_service_account(OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT)
        self.env = {**os.environ, **chart_operator_env(cluster), "KUBECONFIG": str(kubeconfig),
                    "POD_NAME": self.POD_NAME, "WHISPER_RESYNC_SECONDS": str(resync_seconds)}
        self.log_path = log_path
        self.starts = 0
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        self.starts += 1
        with self.log_path.open("a") as log:
            log.write(f"\n===== start #{self.starts} =====\n")
            log.flush()
            self._process = subprocess.Popen(
                [sys.executable, "-m", "whisper_operator.cli", "run", "--all-namespaces"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        """The running operator's process id (its /proc holds its memory and CPU time)."""
        assert self._process is not None, "the operator was never started"
        return self._process.pid

    def kill(self) -> None:
        """SIGKILL: no clean-up, no peering farewell; whatever it was doing is cut off."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)

    def stop(self) -> None:
        if self._process is not None:
            terminate(self._process)

    def assert_alive(self) -> None:
        returncode = self._process.poll() if self._process else "never started"
        assert returncode is None, f"the operator exited ({returncode}):\n{self.log_tail()}"

    def log_since_start(self) -> str:
        """What the current (or last) run has logged so far."""
        return self.log_path.read_text().rsplit(f"===== start #{self.starts} =====", 1)[-1]

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text().splitlines()[-lines:])


# --- the runtime on CPU ---------------------------------------------------------------------------------------------


def cpu_runtime_args(pod_args: list[str]) -> tuple[contract.RuntimeArgs, contract.RuntimeArgs]:
    """The contract's arguments as the predictor pod got them, and the same with what a CPU can run."""
    scheduled = contract.parse(pod_args)
    return scheduled, dataclasses.replace(scheduled, **CPU_OVERRIDES)


@contextlib.contextmanager
def running_runtime(model_dir: Path, args: contract.RuntimeArgs, log_path: Path) -> Iterator[tuple[str, str]]:
    """``whisper-runtime`` on loopback; yields (REST base URL, gRPC address) once it reports ready."""
    http_port, grpc_port = free_port(), free_port()
    argv = [sys.executable, "-m", "whisper_runtime", f"--model_name={ENDPOINT}", f"--model_dir={model_dir}",
            f"--http_port={http_port}", f"--grpc_port={grpc_port}", *args.to_argv()]
    with log_path.open("w") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}"
    try:
        _wait_runtime_ready(url, process, log_path)
        yield url, f"127.0.0.1:{grpc_port}"
    finally:
        terminate(process)


def _wait_runtime_ready(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + RUNTIME_READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"whisper-runtime exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise TimeoutError(f"whisper-runtime not ready after {RUNTIME_READY_TIMEOUT_SECONDS} s")


def transcribe_v2_rest(url: str, audio: bytes) -> str:
    """KServe v2 REST: the encoded file as a base64 BYTES tensor named "audio"."""
    request = {"inputs": [{"name": "audio", "datatype": "BYTES", "shape": [1],
                           "data": [base64.b64encode(audio).decode()]}]}
    response = httpx.post(f"{url}/v2/models/{ENDPOINT}/infer", json=request, timeout=300)
    response.raise_for_status()
    [text] = next(output for output in response.json()["outputs"] if output["name"] == "text")["data"]
    return text


def transcribe_v2_grpc(address: str, audio: bytes) -> str:
    """KServe v2 gRPC through KServe's own client."""
    from kserve import InferenceGRPCClient, InferInput, InferRequest

    async def call() -> str:
        client = InferenceGRPCClient(address, timeout=300)
        try:
            tensor = InferInput("audio", [1], "BYTES")
            tensor.set_data_from_numpy(np.array([audio], dtype=object), binary_data=True)
            response = await client.infer(InferRequest(model_name=ENDPOINT, infer_inputs=[tensor]))
        finally:
            await client.close()
        text = next(output for output in response.outputs if output.name == "text").as_numpy().reshape(-1)[0]
        return text.decode() if isinstance(text, bytes) else str(text)

    return asyncio.run(call())


# --- the story ------------------------------------------------------------------------------------------------------


class Narrator:
    """Numbered steps with their durations, and indented details."""

    def __init__(self, total_steps: int):
        self.total_steps = total_steps
        self.number = 0
        self.started = time.monotonic()

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.number += 1
        print(f"\n[{self.number}/{self.total_steps}] {title}", flush=True)
        began = time.monotonic()
        yield
        print(f"      ... {time.monotonic() - began:.1f} s", flush=True)

    @staticmethod
    def say(text: str = "") -> None:
        for line in text.splitlines() or [""]:
            print(f"      {line}", flush=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _get_json(cluster: LocalCluster, *args: str) -> dict:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def _predictor_pod(cluster: LocalCluster) -> dict:
    selector = f"serving.kserve.io/inferenceservice={ENDPOINT}"
    [pod] = _get_json(cluster, "pods", "-n", DEMO_NAMESPACE, "-l", selector)["items"]
    return pod


def _describe_node(cluster: LocalCluster, name: str) -> str:
    labels = _get_json(cluster, "node", name)["metadata"]["labels"]
    return (f"{name}: {labels.get('nvidia.com/gpu.product')}, compute capability "
            f"{labels.get('nvidia.com/gpu.compute.major')}.{labels.get('nvidia.com/gpu.compute.minor')}")


def run_demo(work_dir: Path) -> None:
    say = Narrator.say
    narrator = Narrator(total_steps=7)
    with narrator.step("Preparing: control-plane binaries, the tiny.en Whisper weights, a speech sample"):
        say(f"binaries: {binaries.ensure_built()}")
        model_dir = models.ensure_model(DEMO_MODEL)
        say(f"model:    {model_dir} (real weights, converted to Hugging Face format)")
        sample = speech.jfk()
        say(f"speech:   {sample.path.name}, {sample.duration:.1f} s of real speech")

    with contextlib.ExitStack() as cleanup:
        with narrator.step("Starting a local Kubernetes control plane (etcd, kube-apiserver, scheduler, kwok, KServe)"):
            cluster = cleanup.enter_context(LocalCluster(work_dir=work_dir / "cluster"))
            say(cluster.kubectl("get", "nodes", "-L", "nvidia.com/gpu.product,nvidia.com/gpu.compute.major,"
                                "nvidia.com/gpu.compute.minor").stdout)

        with narrator.step(f"helm install {RELEASE} charts/whisper-operator -n {OPERATOR_NAMESPACE}"):
            install_chart(cluster)
            say(cluster.helm("list", "-n", OPERATOR_NAMESPACE).stdout)
            operator = OperatorProcess(cluster, work_dir / "operator.log")
            operator.start()
            cleanup.callback(operator.stop)
            say("The operator runs here as the chart's ServiceAccount, under exactly the chart's RBAC.")

        with narrator.step(f"kubectl apply -f examples/whisper-endpoint.yaml -n {DEMO_NAMESPACE}"):
            cluster.kubectl("create", "namespace", DEMO_NAMESPACE)
            say(cluster.kubectl("apply", "-f", str(EXAMPLE), "-n", DEMO_NAMESPACE).stdout.strip())
            cluster.kubectl("wait", "--for=condition=Ready", "--timeout=180s", f"whisperendpoint/{ENDPOINT}",
                            "-n", DEMO_NAMESPACE)
            say(f"$ kubectl get whisperendpoints -n {DEMO_NAMESPACE}")
            say(cluster.kubectl("get", "whisperendpoints", "-n", DEMO_NAMESPACE).stdout)
            pod = _predictor_pod(cluster)
            say(f"predictor pod {pod['metadata']['name']} was scheduled onto")
            say(f"  {_describe_node(cluster, pod['spec']['nodeName'])}")
            say("(the A10G, 8.6, and the T4, 7.5, are never used: fp8 KV cache needs 8.9 or newer)")

        with narrator.step("Runtime arguments: from the scheduled pod, adapted to this CPU"):
            [container] = [c for c in pod["spec"]["containers"] if c["name"] == "kserve-container"]
            scheduled, on_cpu = cpu_runtime_args(container.get("args", []))
            say("the pod's container args: " + " ".join(container.get("args", [])))
            say(f"runtime flags in effect:  {' '.join(scheduled.to_argv())}")
            say("this machine has no GPU, so: " + ", ".join(f"--{key}={value}" for key, value in CPU_OVERRIDES.items())
                + " (the rest as scheduled)")

        with narrator.step(f"Starting whisper-runtime on CPU with the real {DEMO_MODEL} weights"):
            url, grpc_address = cleanup.enter_context(
                running_runtime(model_dir, on_cpu, work_dir / "runtime.log"))
            say(f"KServe v2 REST {url}, gRPC {grpc_address}: ready")

        with narrator.step(f"Transcribing {sample.path.name} through the KServe v2 protocol"):
            audio = sample.path.read_bytes()
            for protocol, transcribe, where in (("REST", transcribe_v2_rest, url),
                                                ("gRPC", transcribe_v2_grpc, grpc_address)):
                began = time.monotonic()
                text = transcribe(where, audio)
                say(f"v2 {protocol} ({time.monotonic() - began:.1f} s): {text.strip()}")
            say(f"reference:          {sample.text}")

        print("\nCleaning up: runtime, operator, control plane, temporary files.", flush=True)
    print(f"Done in {narrator.elapsed():.0f} s.", flush=True)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="whisper-demo-") as work_dir:
        run_demo(Path(work_dir))
    return 0
