#!/usr/bin/env bash
# Builds the local control plane (kubectl, helm, etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok,
# KServe's controller manager) with `go build` from official Go modules fetched through the Go module proxy, and
# copies the manifests the cluster installs from those modules. Pins: devkit/go/versions.env.
# Output: $(python -m whisper_devkit.binaries dir). Next to each binary, <binary>.recipe records how it was built
# (module, package, version, linker flags): a binary is built again when its recipe changed, else kept.
# Each build's seconds are appended to build-seconds.txt in that folder.
# Sourcing the script defines its functions without building anything (tests/devkit/test_build_binaries.py).
set -euo pipefail
devkit=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$devkit/go/versions.env"

module_download() {  # module@version field (Dir or GoMod)
  (cd "$work" && go mod download -json "$1" | sed -n "s/.*\"$2\": \"\(.*\)\",*/\1/p")
}

# k8s.io/kubernetes points its k8s.io/* staging modules at ./staging/src, which only exists in its own tree:
# our module replaces each one named there with the published twin (v1.X.Y -> v0.X.Y). For kubernetes that makes
# it buildable; for helm (built on the same minor) it puts its k8s.io libraries at the same version, so packages
# compiled for one binary are reused from the build cache by the next. kwok keeps its own (newer) ones.
staging_modules() {
  sed -n 's#^\s*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*#\1#p' \
      "$(module_download "k8s.io/kubernetes@$KUBERNETES_VERSION" GoMod)"
}

# An upstream module's own `replace` directives (old=new@version), which Go ignores in a module that requires it.
upstream_replacements() {  # module-dir
  sed -n 's#^\(replace \)\?\s*\([^ ]*\) => \([^ ]*\) \(v[^ ]*\)$#\2=\3@\4#p' "$1/go.mod"
}

# A throwaway module of ours that will require one upstream module at its pin. `like-upstream` copies that module's
# replace directives (it does not build without them) and its go.sum: the checksums are then verified locally
# instead of one checksum-database look-up per module (a cold `go get` of KServe: 400 s -> 165 s).
init_module() {  # name [pin-k8s-libraries | like-upstream module@version]
  [ -f "$work/$1/go.mod" ] && return
  rm -rf "$work/$1.partial" && mkdir -p "$work/$1.partial"
  (cd "$work/$1.partial" && go mod init "whisper-devkit/$1" >/dev/null 2>&1)
  local replacements=() upstream
  case "${2:-}" in
    pin-k8s-libraries)
      for staging in $(staging_modules); do replacements+=("$staging=$staging@v0${KUBERNETES_VERSION#v1}"); done ;;
    like-upstream)
      upstream=$(module_download "$3" Dir)
      mapfile -t replacements < <(upstream_replacements "$upstream")
      install -m 644 "$upstream/go.sum" "$work/$1.partial/go.sum" ;;
  esac
  for replacement in "${replacements[@]}"; do (cd "$work/$1.partial" && go mod edit -replace="$replacement"); done
  mv "$work/$1.partial" "$work/$1"
}

build() {  # binary module-dir package version [version-ldflags]
  local name=$1 dir=$2 package=$3 version=$4 ldflags="-s -w ${5:-}" started recipe
  recipe="$dir $package@$version -ldflags=$ldflags"
  if [ -x "$bin/$name" ] && [ "$(cat "$bin/$name.recipe" 2>/dev/null)" = "$recipe" ]; then
    echo "cached  $bin/$name"; return
  fi
  started=$(date +%s)
  (cd "$work/$dir" && go get "$package@$version" &&
   go build -trimpath -ldflags="$ldflags" -o "$bin/$name.partial" "$package")
  mv "$bin/$name.partial" "$bin/$name"
  echo "$recipe" > "$bin/$name.recipe"
  echo "$name $(( $(date +%s) - started ))" >> "$bin/build-seconds.txt"
  echo "built   $bin/$name in $(( $(date +%s) - started )) s"
}

# The kwok binary has no built-in behaviour: it runs the Stages it is given. Take kwok's own "fast" stages
# (nodes become Ready and send heartbeats; bound pods become Running and Ready) from the same module.
write_kwok_stages() {
  [ -f "$bin/kwok-stages.yaml" ] && return
  local stages
  stages=$(module_download "sigs.k8s.io/kwok@$KWOK_VERSION" Dir)/kustomize/stage
  for stage in node/fast/node-initialize node/heartbeat/node-heartbeat pod/fast/pod-ready pod/fast/pod-complete \
               pod/fast/pod-delete; do
    echo "---"; cat "$stages/$stage.yaml"
  done > "$bin/kwok-stages.yaml.partial"
  mv "$bin/kwok-stages.yaml.partial" "$bin/kwok-stages.yaml"
}

# What the local cluster installs for KServe, as the module ships it: its CRDs (the serving.kserve.io kinds the manager
# watches or its pod webhook reads), the `inferenceservice-config` ConfigMap, the manager's RBAC and its webhooks.
copy_kserve_manifests() {
  [ -d "$bin/kserve" ] && return
  local module
  module=$(module_download "github.com/kserve/kserve@$KSERVE_GO_MODULE_VERSION" Dir)
  rm -rf "$bin/kserve.partial" && mkdir -p "$bin/kserve.partial"
  (cd "$module" && cp --parents config/crd/full/serving.kserve.io_*.yaml \
     config/crd/full/clusterstoragecontainer/serving.kserve.io_clusterstoragecontainers.yaml \
     config/configmap/inferenceservice.yaml config/webhook/manifests.yaml \
     config/rbac/service_account.yaml config/rbac/role.yaml config/rbac/role_binding.yaml "$bin/kserve.partial")
  chmod -R u+w "$bin/kserve.partial" && mv "$bin/kserve.partial" "$bin/kserve"
}

# KEDA's ScaledObject CRD, from the KEDA module KServe's go.mod requires, beside KServe's CRDs: KServe's controller
# only reconciles `serving.kserve.io/autoscalerClass: keda` into ScaledObjects when that CRD exists at its start.
copy_keda_crd() {
  local target="$bin/kserve/config/crd/keda/keda.sh_scaledobjects.yaml" kserve keda_version keda
  [ -f "$target" ] && return
  kserve=$(module_download "github.com/kserve/kserve@$KSERVE_GO_MODULE_VERSION" Dir)
  keda_version=$(sed -n 's#^\s*github.com/kedacore/keda/v2 \(v[^ ]*\).*#\1#p' "$kserve/go.mod")
  keda=$(module_download "github.com/kedacore/keda/v2@$keda_version" Dir)
  mkdir -p "$(dirname "$target")"
  install -m 644 "$keda/config/crd/bases/keda.sh_scaledobjects.yaml" "$target.partial" && mv "$target.partial" "$target"
}

# Stamp the release into the binaries as Kubernetes' and Helm's own builds do (helm's kubeVersion checks read it).
kubernetes_minor=${KUBERNETES_VERSION#v1.}
kubernetes_minor=${kubernetes_minor%%.*}
k8s_version_flags=""
for version_package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_version_flags+=" -X $version_package.gitVersion=$KUBERNETES_VERSION -X $version_package.gitMajor=1"
  k8s_version_flags+=" -X $version_package.gitMinor=$kubernetes_minor -X $version_package.gitTreeState=clean"
done
# helm's Makefile sets the Kubernetes version `helm template` and `helm lint` assume (without it: v1.20, and a
# chart's `kubeVersion: >=1.30` fails) to its client-go's: 1.<minor of client-go v0.<minor>>, here pinned to ours.
helm_version_flags="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for version_package in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  helm_version_flags+=" -X $version_package.k8sVersionMajor=1 -X $version_package.k8sVersionMinor=$kubernetes_minor"
done

main() {
  bin=$(PYTHONPATH="$devkit" python3 -m whisper_devkit.binaries dir)
  work="$bin/../../go-modules/$(basename "$bin")"
  mkdir -p "$bin" "$work"
  export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
  init_module kubernetes pin-k8s-libraries
  init_module helm pin-k8s-libraries
  init_module etcd
  init_module kwok
  init_module kserve like-upstream "github.com/kserve/kserve@$KSERVE_GO_MODULE_VERSION"
  # kubectl and helm first: other work needs them before the cluster.
  build kubectl                 kubernetes k8s.io/kubernetes/cmd/kubectl                 "$KUBERNETES_VERSION" "$k8s_version_flags"
  build helm                    helm       helm.sh/helm/v3/cmd/helm                      "$HELM_VERSION" "$helm_version_flags"
  build etcd                    etcd       go.etcd.io/etcd/server/v3                     "$ETCD_VERSION"
  build kube-apiserver          kubernetes k8s.io/kubernetes/cmd/kube-apiserver          "$KUBERNETES_VERSION" "$k8s_version_flags"
  build kube-controller-manager kubernetes k8s.io/kubernetes/cmd/kube-controller-manager "$KUBERNETES_VERSION" "$k8s_version_flags"
  build kube-scheduler          kubernetes k8s.io/kubernetes/cmd/kube-scheduler          "$KUBERNETES_VERSION" "$k8s_version_flags"
  build kwok                    kwok       sigs.k8s.io/kwok/cmd/kwok                     "$KWOK_VERSION"
  write_kwok_stages
  build kserve-controller-manager kserve github.com/kserve/kserve/cmd/manager "$KSERVE_GO_MODULE_VERSION"
  copy_kserve_manifests
  copy_keda_crd
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then main; fi
