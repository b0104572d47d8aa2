"""The artifact bucket an estimator creates when the user names none, and its access-log bucket."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .._iam import acknowledge_all, acknowledge_compliance, compliance_findings

#: With this flag unset (apps without the recommended flags), CDK grants S3 log delivery through
#: the ``LogDeliveryWrite`` ACL, which cfn-lint reports (W3045); the bucket policy it uses when the
#: flag is set is what AWS recommends. Set on the estimator's own subtree only.
LOG_DELIVERY_BY_POLICY = "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"


def artifact_bucket(scope: Construct, key: kms.IKey | None) -> s3.Bucket:
    """Versioned, SSL-only, private, access-logged and retained: artifacts outlive the stack."""
    access_logs = s3.Bucket(
        scope,
        "AccessLogs",
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        versioned=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
        removal_policy=RemovalPolicy.RETAIN,
    )
    acknowledge_all(
        access_logs,
        [
            (
                "AwsSolutions::AwsSolutions-S1",
                "This bucket receives the artifact bucket's server access logs; logging it "
                "into itself would loop.",
            ),
            *compliance_findings(
                "S3DefaultEncryptionKMS",
                "S3 delivers server access logs only to buckets encrypted with SSE-S3, not "
                "SSE-KMS.",
            ),
            *compliance_findings(
                "S3BucketReplicationEnabled",
                "A log sink of this stack; replication needs a bucket in another region that a "
                "single-region stack cannot own. Versioned and retained instead.",
            ),
        ],
    )
    bucket = s3.Bucket(
        scope,
        "Artifacts",
        encryption=s3.BucketEncryption.KMS if key else s3.BucketEncryption.S3_MANAGED,
        encryption_key=key,
        bucket_key_enabled=key is not None,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        versioned=True,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix="artifacts/",
        removal_policy=RemovalPolicy.RETAIN,
    )
    acknowledge_compliance(
        bucket,
        "S3BucketReplicationEnabled",
        "Artifacts can be rebuilt by retraining from the fingerprinted source; replication "
        "needs a bucket in another region that a single-region stack cannot own. Versioned "
        "and retained instead.",
    )
    return bucket
