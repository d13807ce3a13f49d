#!/bin/sh
# minio-init: runs once in the minio/mc image after MinIO is healthy. Idempotent.
# Creates the page-content bucket and an application user limited to that bucket, so the
# workers never hold MinIO's root credentials (MINIO_ROOT_USER / MINIO_ROOT_PASSWORD).
set -eu

: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}"
: "${STREAMCRAWL_S3_ACCESS_KEY:?}" "${STREAMCRAWL_S3_SECRET_KEY:?}" "${STREAMCRAWL_S3_BUCKET:?}"

mc alias set streamcrawl "http://${MINIO_ENDPOINT:-minio:9000}" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "streamcrawl/$STREAMCRAWL_S3_BUCKET"

# Shell built-ins only: the minio/mc image is minimal (no grep, no mktemp).
policy_file=/tmp/streamcrawl-rw.json
printf '%s\n' "{
  \"Version\": \"2012-10-17\",
  \"Statement\": [
    {\"Effect\": \"Allow\",
     \"Action\": [\"s3:GetBucketLocation\", \"s3:ListBucket\", \"s3:ListBucketMultipartUploads\"],
     \"Resource\": [\"arn:aws:s3:::$STREAMCRAWL_S3_BUCKET\"]},
    {\"Effect\": \"Allow\",
     \"Action\": [\"s3:GetObject\", \"s3:PutObject\", \"s3:DeleteObject\",
                \"s3:AbortMultipartUpload\", \"s3:ListMultipartUploadParts\"],
     \"Resource\": [\"arn:aws:s3:::$STREAMCRAWL_S3_BUCKET/*\"]}
  ]
}" > "$policy_file"
mc admin policy create streamcrawl streamcrawl-rw "$policy_file"

# `user add` on an existing user updates its secret key (rotation = change the env, re-run).
mc admin user add streamcrawl "$STREAMCRAWL_S3_ACCESS_KEY" "$STREAMCRAWL_S3_SECRET_KEY"
case "$(mc admin user info streamcrawl "$STREAMCRAWL_S3_ACCESS_KEY" --json)" in
    *'"streamcrawl-rw"'*) ;;  # already attached: attaching again is an error
    *) mc admin policy attach streamcrawl streamcrawl-rw --user "$STREAMCRAWL_S3_ACCESS_KEY" ;;
esac
echo "minio-init: bucket '$STREAMCRAWL_S3_BUCKET' and user '$STREAMCRAWL_S3_ACCESS_KEY' ready"
