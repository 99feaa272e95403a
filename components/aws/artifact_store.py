"""Artifact store: the S3 bucket for raw data, pipeline artifacts, models, MLflow artifacts and
captured traffic, plus the bucket that receives its server access logs.

The data bucket is versioned, SSE-KMS encrypted with the stack key (S3 Bucket Keys on),
blocks every kind of public access, refuses non-TLS requests, logs every access and expires
replaced object versions after `noncurrent_days`. The access-log bucket gets the same
treatment except encryption: S3 server access logging can only deliver into buckets encrypted
with SSE-S3, so it keeps the SSE-S3 default that S3 applies to every bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.common import (
    StackNames,
    bad,
    child,
    global_bucket_name,
    partition,
    policy,
    stateful,
)
from core.config import STORE_DEFAULTS
from core.errors import raise_problems

PURPOSE_TAG = "mlops:purpose"


@dataclass(frozen=True)
class ArtifactStoreArgs:
    prefix: str
    """`<client>-<env>`; bucket names are `<prefix>-<account>-<region>-data|logs`."""
    account_id: pulumi.Input[str]
    """Account that owns the buckets (part of their globally unique names)."""
    region: str
    """Region of the buckets."""
    kms_key_arn: pulumi.Input[str]
    """Stack key that encrypts every object of the data bucket."""
    noncurrent_days: int = 90
    """Days a replaced object version is kept before it expires."""
    log_retention_days: int = 365
    """Days access logs are kept."""
    protect: bool = STORE_DEFAULTS.protect
    """Protect both buckets and retain them on delete (`pulumi destroy` keeps the data)."""
    eventbridge_notifications: bool = True
    """Send object events to EventBridge (the data-change training trigger listens to them)."""


def validate_artifact_store_args(args: ArtifactStoreArgs) -> None:
    problems = []
    if not 1 <= args.noncurrent_days <= 3650:
        problems.append(
            bad(
                "noncurrent_days",
                args.noncurrent_days,
                "between 1 and 3650",
                "set stores.noncurrentDays",
            )
        )
    if not 1 <= args.log_retention_days <= 3650:
        problems.append(
            bad(
                "log_retention_days",
                args.log_retention_days,
                "between 1 and 3650",
                "pass a retention S3 accepts",
            )
        )
    if len(args.prefix) + 34 > 63:
        problems.append(
            bad(
                "prefix",
                args.prefix,
                "short enough for a 63-character bucket name",
                "use a shorter client name",
            )
        )
    raise_problems("ArtifactStore", problems)


class ArtifactStore(pulumi.ComponentResource):
    """Versioned, KMS-encrypted, private, TLS-only, access-logged S3 artifact store."""

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    uri: pulumi.Output[str]
    log_bucket_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ArtifactStoreArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate_artifact_store_args(args)
        super().__init__("mlops:aws:ArtifactStore", name, None, opts)
        names = StackNames(args.prefix)
        part = partition(args.region)

        logs = self._bucket(
            f"{name}-logs",
            global_bucket_name(names, args.account_id, args.region, "logs"),
            "access-logs",
            args.protect,
        )
        log_arn = pulumi.Output.concat("arn:", part, ":s3:::", logs.bucket)
        data_name = global_bucket_name(names, args.account_id, args.region, "data")
        data_arn = pulumi.Output.concat("arn:", part, ":s3:::", data_name)
        self._private(
            f"{name}-logs",
            logs,
            log_arn,
            extra=[
                {
                    "Sid": "ServerAccessLogsFromTheDataBucket",
                    "Effect": "Allow",
                    "Principal": {"Service": "logging.s3.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": pulumi.Output.concat(log_arn, "/access/*"),
                    "Condition": {
                        "ArnLike": {"aws:SourceArn": data_arn},
                        "StringEquals": {"aws:SourceAccount": args.account_id},
                    },
                }
            ],
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-logs-lifecycle",
            bucket=logs.bucket,
            rules=[
                {
                    "id": "expire-access-logs",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "expiration": {"days": args.log_retention_days},
                    "noncurrent_version_expiration": {"noncurrent_days": 1},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
                }
            ],
            opts=child(self, depends_on=[logs]),
        )

        data = self._bucket(f"{name}-data", data_name, "artifacts", args.protect)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-data-sse",
            bucket=data.bucket,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": args.kms_key_arn,
                    },
                    "bucket_key_enabled": True,
                }
            ],
            opts=child(self),
        )
        self._private(f"{name}-data", data, data_arn, extra=[])
        aws.s3.BucketLogging(
            f"{name}-data-logging",
            bucket=data.bucket,
            target_bucket=logs.bucket,
            target_prefix="access/",
            opts=child(self),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-data-lifecycle",
            bucket=data.bucket,
            rules=[
                {
                    "id": "expire-replaced-versions",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "noncurrent_version_expiration": {"noncurrent_days": args.noncurrent_days},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
                }
            ],
            opts=child(self, depends_on=[data]),
        )
        if args.eventbridge_notifications:
            aws.s3.BucketNotification(
                f"{name}-data-events", bucket=data.bucket, eventbridge=True, opts=child(self)
            )

        self.bucket_name = data.bucket
        self.bucket_arn = data_arn
        self.uri = pulumi.Output.concat("s3://", data.bucket)
        self.log_bucket_name = logs.bucket
        self.register_outputs({"bucketName": self.bucket_name, "uri": self.uri})

    def _bucket(
        self, name: str, bucket: pulumi.Input[str], purpose: str, protect: bool
    ) -> aws.s3.Bucket:
        b = aws.s3.Bucket(
            name,
            bucket=bucket,
            force_destroy=False,
            object_lock_enabled=False,
            tags={PURPOSE_TAG: purpose},
            opts=stateful(self, protect),
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=b.bucket,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child(self),
        )
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=b.bucket,
            versioning_configuration={"status": "Enabled"},
            opts=child(self),
        )
        return b

    def _private(
        self, name: str, b: aws.s3.Bucket, bucket_arn: pulumi.Output[str], extra: list
    ) -> None:
        block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=b.bucket,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child(self),
        )
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=b.bucket,
            policy=policy(
                [
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                    {
                        "Sid": "DenyOutdatedTls",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
                        "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
                    },
                    *extra,
                ]
            ),
            opts=child(self, depends_on=[block]),
        )
