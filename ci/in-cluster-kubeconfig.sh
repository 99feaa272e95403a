#!/usr/bin/env bash
# Kubernetes credentials for a CI job that deploys an on-prem stack: a kubeconfig that points
# at the projected token of the ServiceAccount the runner pod runs as (the stack's
# `<stack>-ci`, components/onprem/ci_identity.py). No token is copied or stored: the kubeconfig
# names the token file, which the kubelet rotates. Used by .github/workflows/*.yml and
# azure-pipelines/*.yml; run the runner / agent pods with that ServiceAccount and
# `automountServiceAccountToken: true` on the pod (the ServiceAccount itself does not automount).
#
#   ci/in-cluster-kubeconfig.sh STACK      writes $KUBECONFIG (default ~/.kube/config)
set -euo pipefail
stack="${1:?usage: ci/in-cluster-kubeconfig.sh STACK}"
sa="${SERVICEACCOUNT_DIR:-/var/run/secrets/kubernetes.io/serviceaccount}"
if [ ! -r "$sa/token" ] || [ -z "${KUBERNETES_SERVICE_HOST:-}" ]; then
  echo "error: no ServiceAccount token at $sa/token (or KUBERNETES_SERVICE_HOST unset): run" \
    "the job for $stack on its in-cluster runner, whose pod runs as ServiceAccount $stack-ci" \
    "(docs/releases.md, step 0)" >&2
  exit 1
fi
config="${KUBECONFIG:-$HOME/.kube/config}"
mkdir -p "$(dirname "$config")"
cat >"$config" <<YAML
apiVersion: v1
kind: Config
clusters:
  - name: in-cluster
    cluster:
      server: https://${KUBERNETES_SERVICE_HOST}:${KUBERNETES_SERVICE_PORT:-443}
      certificate-authority: $sa/ca.crt
users:
  - name: $stack-ci
    user:
      tokenFile: $sa/token
contexts:
  - name: $stack-ci
    context:
      cluster: in-cluster
      user: $stack-ci
current-context: $stack-ci
YAML
chmod 600 "$config"
echo "kubeconfig $config: ServiceAccount token of $stack-ci (file $sa/token)"
