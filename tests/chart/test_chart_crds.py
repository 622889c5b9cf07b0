"""The chart's CRDs are the repository's crds/, byte for byte: ours and kopf's peering CRDs, nothing else."""

import shutil
import subprocess

import yaml

from chart_render import CHART, REPO_ROOT

SOURCE_CRDS = REPO_ROOT / "crds"
CHART_CRDS = CHART / "crds"
KOPF_PEERING_CRDS = {"clusterkopfpeerings.kopf.dev": "Cluster", "kopfpeerings.kopf.dev": "Namespaced"}


def yaml_files(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.yaml"))}


def kopf_files():
    return {name: content for name, content in yaml_files(CHART_CRDS).items() if name.startswith("kopf.dev_")}


def test_chart_crds_are_byte_identical_copies_of_the_source():
    assert yaml_files(SOURCE_CRDS), "crds/ holds no CRD"
    assert yaml_files(CHART_CRDS) == yaml_files(SOURCE_CRDS), "run charts/whisper-operator/sync-crds.sh"


def test_kopf_contributes_only_its_peering_crds():
    documents = [doc for content in kopf_files().values() for doc in yaml.safe_load_all(content) if doc]
    assert {doc["metadata"]["name"]: doc["spec"]["scope"] for doc in documents} == KOPF_PEERING_CRDS
    assert all(doc["kind"] == "CustomResourceDefinition" for doc in documents)


def test_sync_script_reproduces_the_copies(tmp_path):
    """Run sync-crds.sh on a scratch copy of the layout, starting from a stale copy, and compare."""
    chart = tmp_path / "charts" / "whisper-operator"
    shutil.copytree(CHART, chart)
    shutil.copytree(SOURCE_CRDS, tmp_path / "crds")
    (chart / "crds" / "removed.example.com.yaml").write_text("stale: copy\n")
    subprocess.run(["bash", str(chart / "sync-crds.sh")], check=True)
    assert yaml_files(chart / "crds") == yaml_files(CHART_CRDS)
