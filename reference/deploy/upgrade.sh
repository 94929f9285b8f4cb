#!/bin/sh
# The example upgrade script for `tagcast deployer --apply exec`: pins the
# workload's container to the delivered image:tag@digest, waits for the
# rollout, and rolls back when it does not complete.
#
#   tagcast deployer --apply exec --command reference/deploy/upgrade.sh \
#     --secret "$SECRET" --image elixircloud/cwl-wes --stage production
#
# From the deployer (the callback), in the environment:
#   TAGCAST_IMAGE, TAGCAST_TAG, TAGCAST_DIGEST, TAGCAST_REFERENCE,
#   TAGCAST_STAGE, TAGCAST_API_VERSION, TAGCAST_PREVIOUS_TAG, TAGCAST_EVENT_ID
# From the operator (set where the deployer runs; TAGCAST_* variables of the
# deployer's own configuration do not reach this script):
#   UPGRADE_NAMESPACE  (default: default)
#   UPGRADE_WORKLOAD   (default: deployment/cwl-wes)
#   UPGRADE_CONTAINER  (default: the last path component of TAGCAST_IMAGE)
#   UPGRADE_TIMEOUT    rollout timeout (default: 300s)
#   KUBECTL            (default: kubectl); extra kubectl flags in KUBECTL_ARGS
#
# Exit status: 0 rolled out, 1 the rollout failed (rolled back), 2 usage.
set -eu

for var in TAGCAST_IMAGE TAGCAST_TAG TAGCAST_DIGEST TAGCAST_REFERENCE TAGCAST_EVENT_ID; do
  eval "value=\${$var:-}"
  if [ -z "$value" ]; then
    echo "upgrade.sh: $var is not set; run me from tagcast deployer --apply exec" >&2
    exit 2
  fi
done

namespace=${UPGRADE_NAMESPACE:-default}
workload=${UPGRADE_WORKLOAD:-deployment/cwl-wes}
container=${UPGRADE_CONTAINER:-${TAGCAST_IMAGE##*/}}
timeout=${UPGRADE_TIMEOUT:-300s}
kubectl=${KUBECTL:-kubectl}
# shellcheck disable=SC2086 # KUBECTL_ARGS is a list of flags
set -- ${KUBECTL_ARGS:-} --namespace "$namespace"

case "$TAGCAST_REFERENCE" in
  *@sha256:*) ;;
  *) echo "upgrade.sh: $TAGCAST_REFERENCE is not pinned to a digest" >&2; exit 2 ;;
esac

echo "upgrade.sh: $workload $container: ${TAGCAST_PREVIOUS_TAG:-(unknown)} -> $TAGCAST_TAG (event $TAGCAST_EVENT_ID)"
"$kubectl" "$@" set image "$workload" "$container=$TAGCAST_REFERENCE"
"$kubectl" "$@" annotate --overwrite "$workload" \
  "tagcast.elixir-cloud.org/digest=$TAGCAST_DIGEST" \
  "tagcast.elixir-cloud.org/tag=$TAGCAST_TAG" \
  "tagcast.elixir-cloud.org/event-id=$TAGCAST_EVENT_ID" \
  "kubernetes.io/change-cause=tagcast: $TAGCAST_IMAGE ${TAGCAST_PREVIOUS_TAG:-(none)} -> $TAGCAST_TAG"

if "$kubectl" "$@" rollout status "$workload" --timeout="$timeout"; then
  echo "upgrade.sh: $workload runs $TAGCAST_REFERENCE"
  exit 0
fi

echo "upgrade.sh: rollout of $TAGCAST_TAG did not complete within $timeout; rolling back" >&2
"$kubectl" "$@" rollout undo "$workload" || echo "upgrade.sh: rollback failed too" >&2
"$kubectl" "$@" rollout status "$workload" --timeout="$timeout" || true
exit 1
