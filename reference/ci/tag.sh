#!/bin/sh
# Tag, build, push and check a GA4GH service image the tagcast way.
#
# The one place where a branch becomes a stage: every CI example in this
# folder calls this script, and tests/e2e/ci.rs runs it. See README.md.
#
# Environment:
#   BRANCH             the branch being built (required; a refs/heads/ prefix is dropped)
#   IMAGE              the repository to push to, without tag (required)
#   API_VERSION_FILE   file holding the GA4GH API version (default: API_VERSION)
#   CONTEXT            docker build context (default: .)
#   METADATA_FILE      where buildx writes its metadata (default: tagcast-metadata.json)
#   TAGCAST_ENV_FILE   where the results are written as KEY=value (default: tagcast.env)
#   SERVICE_VERSION    org.opencontainers.image.version (default: the tag; TAG-5
#                      prefers the service's own version when it has one)
#   ANNOTATION_LEVELS  buildx annotation levels (default: manifest; multi-platform
#                      builds may want index,manifest)
#   SOURCE_DATE_EPOCH  build time in seconds since 1970 (default: now)
# Extra arguments are passed to `docker buildx build` (e.g. --platform ...).
#
# Exit status: 0 when pushed and conformant, or when the branch has no stage
# (nothing is built); otherwise the status of the step that failed.
set -eu

: "${BRANCH:?BRANCH must name the branch being built}"
: "${IMAGE:?IMAGE must name the repository to push to}"
API_VERSION_FILE=${API_VERSION_FILE:-API_VERSION}
CONTEXT=${CONTEXT:-.}
METADATA_FILE=${METADATA_FILE:-tagcast-metadata.json}
TAGCAST_ENV_FILE=${TAGCAST_ENV_FILE:-tagcast.env}
ANNOTATION_LEVELS=${ANNOTATION_LEVELS:-manifest}

branch=${BRANCH#refs/heads/}
case "$branch" in
    main) stage=production ;;
    staging) stage=staging ;;
    develop) stage=development ;;
    demo) stage=demo ;;
    *)
        echo "branch $branch has no stage (main, staging, develop, demo): nothing is built or pushed" >&2
        exit 0
        ;;
esac

# Command substitution drops the file's trailing newline; anything else that
# is not MAJOR.MINOR[.PATCH] is refused by `tagcast tag new`.
api_version=$(cat "$API_VERSION_FILE")

# One instant for the tag and the annotations, in whole seconds UTC.
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
    created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null ||
        date -u -r "$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
else
    created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
fi

tag=$(tagcast tag new --api-version "$api_version" --stage "$stage" --at "$created")
version=${SERVICE_VERSION:-$tag}

echo "branch $branch -> stage $stage -> $IMAGE:$tag" >&2

docker buildx build \
    --push \
    --tag "$IMAGE:$tag" \
    --label "org.opencontainers.image.created=$created" \
    --label "org.opencontainers.image.version=$version" \
    --annotation "$ANNOTATION_LEVELS:org.opencontainers.image.created=$created" \
    --annotation "$ANNOTATION_LEVELS:org.opencontainers.image.version=$version" \
    --metadata-file "$METADATA_FILE" \
    "$@" \
    "$CONTEXT"

# The report goes to standard error: standard output carries the tag alone.
tagcast conformance tags --metadata-file "$METADATA_FILE" --stage "$stage" --api-version "$api_version" >&2

{
    echo "TAGCAST_STAGE=$stage"
    echo "TAGCAST_API_VERSION=$api_version"
    echo "TAGCAST_TAG=$tag"
    echo "TAGCAST_IMAGE=$IMAGE:$tag"
    echo "TAGCAST_CREATED=$created"
} >"$TAGCAST_ENV_FILE"
if [ -n "${GITHUB_OUTPUT:-}" ]; then
    {
        echo "stage=$stage"
        echo "tag=$tag"
        echo "image=$IMAGE:$tag"
        echo "created=$created"
    } >>"$GITHUB_OUTPUT"
fi
echo "$tag"
