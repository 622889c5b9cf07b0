"""Simulated nodes for the local control plane: pure manifests, no I/O.

GPU nodes carry the labels NVIDIA GPU Feature Discovery sets on real machines and the taint GPU node pools
carry, so scheduling rules are tested against what a cluster really shows. kwok manages every node annotated
with ``KWOK_NODE_ANNOTATION`` (heartbeats, and pods bound to it become Running and Ready).
"""

from __future__ import annotations

from dataclasses import dataclass

KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_NODE_VALUE = "fake"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT = {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}
CUDA_DRIVER = ("550", "127", "08")
CUDA_RUNTIME = ("12", "4")


@dataclass(frozen=True)
class GpuModel:
    product: str
    family: str
    compute_capability: tuple[int, int]
    memory_mib: int
    instance_type: str
    cpu: str
    memory: str
    mig_capable: bool = False


GPU_MODELS = {
    "h100": GpuModel("NVIDIA-H100-80GB-HBM3", "hopper", (9, 0), 81559, "p5.48xlarge", "192", "2048Gi",
                     mig_capable=True),
    "l4": GpuModel("NVIDIA-L4", "ada-lovelace", (8, 9), 23034, "g6.xlarge", "4", "16Gi"),
    "a10g": GpuModel("NVIDIA-A10G", "ampere", (8, 6), 23028, "g5.xlarge", "4", "16Gi"),
    "t4": GpuModel("Tesla-T4", "turing", (7, 5), 15360, "g4dn.xlarge", "4", "16Gi"),
}
CPU_NODE_NAME = "cpu-node-0"


def gpu_feature_discovery_labels(gpu: GpuModel, count: int) -> dict[str, str]:
    """The labels GFD (and NFD for the PCI vendor) put on a node with ``count`` such GPUs."""
    major, minor = gpu.compute_capability
    return {
        "feature.node.kubernetes.io/pci-10de.present": "true",
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.count": str(count),
        "nvidia.com/gpu.product": gpu.product,
        "nvidia.com/gpu.family": gpu.family,
        "nvidia.com/gpu.memory": str(gpu.memory_mib),
        "nvidia.com/gpu.compute.major": str(major),
        "nvidia.com/gpu.compute.minor": str(minor),
        "nvidia.com/gpu.machine": gpu.instance_type,
        "nvidia.com/gpu.replicas": "1",
        "nvidia.com/gpu.sharing-strategy": "none",
        "nvidia.com/gpu.mode": "compute",
        "nvidia.com/mig.capable": str(gpu.mig_capable).lower(),
        "nvidia.com/cuda.driver.major": CUDA_DRIVER[0],
        "nvidia.com/cuda.driver.minor": CUDA_DRIVER[1],
        "nvidia.com/cuda.driver.rev": CUDA_DRIVER[2],
        "nvidia.com/cuda.runtime.major": CUDA_RUNTIME[0],
        "nvidia.com/cuda.runtime.minor": CUDA_RUNTIME[1],
    }


def node_manifest(name: str, labels: dict[str, str], resources: dict[str, str],
                  taints: list[dict[str, str]]) -> dict:
    """A kwok-managed Node; status is accepted on create, so capacity is set here."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: KWOK_NODE_VALUE},
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                       "type": "kwok", **labels},
        },
        "spec": {"taints": taints},
        "status": {"capacity": resources, "allocatable": resources},
    }


def gpu_node(kind: str, count: int = 1) -> dict:
    gpu = GPU_MODELS[kind]
    labels = {"node.kubernetes.io/instance-type": gpu.instance_type, **gpu_feature_discovery_labels(gpu, count)}
    resources = {"cpu": gpu.cpu, "memory": gpu.memory, "pods": "110", GPU_RESOURCE: str(count)}
    return node_manifest(f"gpu-{kind}-0", labels, resources, [GPU_TAINT])


def cpu_node() -> dict:
    resources = {"cpu": "8", "memory": "32Gi", "pods": "110"}
    return node_manifest(CPU_NODE_NAME, {"node.kubernetes.io/instance-type": "m6i.2xlarge"}, resources, [])


def all_nodes() -> list[dict]:
    """One node per GPU model plus one untainted CPU node (where the operator runs)."""
    return [gpu_node(kind) for kind in GPU_MODELS] + [cpu_node()]
