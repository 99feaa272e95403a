"""Controls for the aws platform (rows of the controls table; see core/controls/__init__.py).

Paths are the engine's camelCase input names. Where a control needs "every bucket has X",
it is written from the bucket's side with `ref_exists` (the bucket's name must be named by an
X resource), and the value of X is checked by its own row."""

from core.controls.engine import MISSING, Control

BUCKET = "aws:s3/bucket:Bucket"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
KEY = "aws:kms/key:Key"
REPO = "aws:ecr/repository:Repository"
ECR_LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MODEL = "aws:sagemaker/model:Model"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DQ_JOB = "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition"
GROUP = "aws:sagemaker/modelPackageGroup:ModelPackageGroup"
TRACKING = "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer"
SG = "aws:ec2/securityGroup:SecurityGroup"
SUBNET = "aws:ec2/subnet:Subnet"
VPC = "aws:ec2/vpc:Vpc"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
VPCE = "aws:ec2/vpcEndpoint:VpcEndpoint"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
QUEUE = "aws:sqs/queue:Queue"
TOPIC = "aws:sns/topic:Topic"
CONNECTION = "aws:cloudwatch/eventConnection:EventConnection"
SCHEDULE = "aws:scheduler/schedule:Schedule"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"

ARTIFACTS = ("tags.mlops:purpose", "artifacts")
DEV_STORES = "dev stores are disposable: `stores.protect` is off in the dev tier"
DEV_SERVERLESS = (
    "dev serves from a serverless endpoint, which AWS runs without network "
    "isolation, VPC, data capture, Model Monitor or deployment guardrails"
)


def _c(
    id_: str,
    type_: str,
    path: str,
    check: str,
    expected: object,
    title: str,
    rationale: str,
    **kw: object,
) -> Control:
    return Control(
        id=id_,
        platform="aws",
        resource_type=type_,
        property_path=path,
        check=check,
        expected=expected,
        title=title,
        rationale=rationale,
        **kw,
    )  # type: ignore[arg-type]


CONTROLS: tuple[Control, ...] = (
    # --- S3 artifact store -------------------------------------------------------------------
    _c(
        "AWS-S3-01",
        BUCKET,
        "bucket",
        "ref_exists",
        f"{PAB}#bucket",
        "Every bucket has a public access block",
        "Without a bucket-level block, one permissive ACL or policy exposes the data.",
    ),
    _c(
        "AWS-S3-02",
        PAB,
        "blockPublicAcls",
        "equals",
        True,
        "Public ACLs are blocked",
        "New public ACLs are refused.",
    ),
    _c(
        "AWS-S3-03",
        PAB,
        "ignorePublicAcls",
        "equals",
        True,
        "Public ACLs are ignored",
        "Existing public ACLs grant nothing.",
    ),
    _c(
        "AWS-S3-04",
        PAB,
        "blockPublicPolicy",
        "equals",
        True,
        "Public bucket policies are blocked",
        "A policy granting public access is refused.",
    ),
    _c(
        "AWS-S3-05",
        PAB,
        "restrictPublicBuckets",
        "equals",
        True,
        "Public bucket access is restricted",
        "Even a public policy only serves the owning account and AWS services.",
    ),
    _c(
        "AWS-S3-06",
        BUCKET,
        "bucket",
        "ref_exists",
        f"{BUCKET_POLICY}#bucket",
        "Every bucket has a bucket policy",
        "The policy carries the TLS-only rule (AWS-S3-07).",
    ),
    _c(
        "AWS-S3-07",
        BUCKET_POLICY,
        "policy",
        "matches",
        r'"Effect":\s*"Deny".*"aws:SecureTransport":\s*"false"',
        "Bucket policies deny requests without TLS",
        "Data and credentials never cross the network in clear text.",
    ),
    _c(
        "AWS-S3-08",
        BUCKET,
        "bucket",
        "ref_exists",
        f"{VERSIONING}#bucket",
        "Every bucket has a versioning configuration",
        "Overwritten or deleted objects (models, data) can be recovered.",
    ),
    _c(
        "AWS-S3-09",
        VERSIONING,
        "versioningConfiguration.status",
        "equals",
        "Enabled",
        "Versioning is enabled",
        "A versioning resource that suspends versioning protects nothing.",
    ),
    _c(
        "AWS-S3-10",
        BUCKET,
        "bucket",
        "ref_exists",
        f"{SSE}#bucket",
        "Artifact buckets have a default-encryption configuration",
        "Objects are encrypted with the stack key without relying on each writer. (The "
        "access-log bucket keeps S3's SSE-S3 default: server access logs cannot be delivered "
        "into SSE-KMS buckets.)",
        when=ARTIFACTS,
    ),
    _c(
        "AWS-S3-11",
        SSE,
        "rules[*].applyServerSideEncryptionByDefault.sseAlgorithm",
        "equals",
        "aws:kms",
        "Default encryption is SSE-KMS",
        "A customer-managed key makes every read auditable and revocable.",
    ),
    _c(
        "AWS-S3-12",
        SSE,
        "rules[*].applyServerSideEncryptionByDefault.kmsMasterKeyId",
        "present",
        None,
        "Default encryption names the stack key",
        "Without a key id S3 falls back to the AWS-managed key, which cannot be restricted.",
    ),
    _c(
        "AWS-S3-13",
        BUCKET,
        "bucket",
        "ref_exists",
        f"{LOGGING}#bucket",
        "Artifact buckets log every access",
        "Server access logs show who read which model or data file.",
        when=ARTIFACTS,
    ),
    _c(
        "AWS-S3-14",
        LOGGING,
        "targetBucket",
        "ref_exists",
        f"{BUCKET}#bucket",
        "Access logs go to a bucket of this stack",
        "Logs land in a bucket with the same protections, not somewhere unmanaged.",
    ),
    _c(
        "AWS-S3-15",
        LIFECYCLE,
        "rules[*].status",
        "equals",
        "Enabled",
        "Lifecycle rules are enabled",
        "A disabled rule lets replaced versions pile up.",
    ),
    _c(
        "AWS-S3-16",
        BUCKET,
        "bucket",
        "ref_exists",
        f"{LIFECYCLE}#bucket",
        "Every bucket has a lifecycle configuration",
        "Versioned buckets grow forever unless old versions expire.",
    ),
    _c(
        "AWS-S3-17",
        LIFECYCLE,
        "rules[0].noncurrentVersionExpiration.noncurrentDays",
        "at_least",
        1,
        "Replaced object versions expire",
        "Keeps recovery possible for the configured days, then bounds storage cost.",
    ),
    _c(
        "AWS-S3-18",
        BUCKET,
        "$opts.protect",
        "equals",
        True,
        "Buckets are protected",
        "`pulumi destroy` cannot delete the data.",
        dev_exception=DEV_STORES,
    ),
    _c(
        "AWS-S3-19",
        BUCKET,
        "$opts.retainOnDelete",
        "equals",
        True,
        "Buckets are retained on delete",
        "Removing the bucket from the program leaves the data.",
        dev_exception=DEV_STORES,
    ),
    _c(
        "AWS-S3-20",
        BUCKET,
        "forceDestroy",
        "equals",
        False,
        "Buckets cannot be force-destroyed",
        "A delete never empties a bucket first.",
    ),
    # --- KMS ---------------------------------------------------------------------------------
    _c(
        "AWS-KMS-01",
        KEY,
        "enableKeyRotation",
        "equals",
        True,
        "Key rotation is on",
        "Key material is replaced yearly, limiting what one leak exposes.",
    ),
    _c(
        "AWS-KMS-02",
        KEY,
        "policy",
        "no_wildcard_grant",
        None,
        "The key policy names its principals",
        "No unconditioned `*` principal and no `kms:*` on every key.",
    ),
    _c(
        "AWS-KMS-03",
        KEY,
        "deletionWindowInDays",
        "at_least",
        30,
        "Key deletion waits 30 days",
        "A mistaken deletion can be cancelled before encrypted data becomes unreadable.",
        dev_exception="dev keys use the 7-day minimum",
    ),
    _c(
        "AWS-KMS-04",
        KEY,
        "$opts.protect",
        "equals",
        True,
        "The stack key is protected",
        "Data encrypted with it stays readable.",
        dev_exception=DEV_STORES,
    ),
    # --- ECR ---------------------------------------------------------------------------------
    _c(
        "AWS-ECR-01",
        REPO,
        "imageScanningConfiguration.scanOnPush",
        "equals",
        True,
        "Images are scanned on push",
        "Known vulnerabilities are reported before deployment.",
    ),
    _c(
        "AWS-ECR-02",
        REPO,
        "imageTagMutability",
        "equals",
        "IMMUTABLE",
        "Image tags are immutable",
        "A tag names one image forever, so a model version maps to one serving image.",
    ),
    _c(
        "AWS-ECR-03",
        REPO,
        "encryptionConfigurations[*].encryptionType",
        "equals",
        "KMS",
        "Images are encrypted with KMS",
        "Image layers use the stack key.",
    ),
    _c(
        "AWS-ECR-04",
        REPO,
        "name",
        "ref_exists",
        f"{ECR_LIFECYCLE}#repository",
        "The repository has a lifecycle policy",
        "Untagged and old images expire.",
    ),
    _c(
        "AWS-ECR-05",
        REPO,
        "$opts.protect",
        "equals",
        True,
        "The repository is protected",
        "Serving images of live versions survive `pulumi destroy`.",
        dev_exception=DEV_STORES,
    ),
    # --- IAM ---------------------------------------------------------------------------------
    _c(
        "AWS-IAM-01",
        ROLE_POLICY,
        "policy",
        "no_wildcard_grant",
        None,
        "Role policies grant no `*` action on `*`",
        "Each role is limited to its duty on this stack's resources.",
    ),
    _c(
        "AWS-IAM-02",
        ROLE,
        "assumeRolePolicy",
        "no_wildcard_grant",
        None,
        "Roles trust named services only",
        "No one outside the named AWS service assumes a role.",
    ),
    _c(
        "AWS-IAM-03",
        ROLE,
        "assumeRolePolicy",
        "matches",
        r'"aws:SourceAccount"|"token\.actions\.githubusercontent\.com:sub"'
        r'|"vstoken\.dev\.azure\.com/[0-9a-f-]{36}:sub"',
        "Role trust is limited to this account (or, for the CI role, one CI subject)",
        "Prevents the confused-deputy problem: the service assumes the role only for this account;"
        " the keyless CI role is pinned to one repository or service connection subject instead"
        " (AWS-CI-01, AWS-CI-04).",
    ),
    _c(
        "AWS-IAM-04",
        ROLE,
        "managedPolicyArns",
        "absent",
        None,
        "Roles carry no managed policies",
        "Every grant is an inline policy of the stack, which AWS-IAM-01 checks.",
    ),
    _c(
        "AWS-IAM-05",
        ROLE,
        "name",
        "cannot_rewrite_own_permissions",
        None,
        "No role can rewrite its own permissions",
        "A role allowed to put or attach a policy on itself, change its own trust or boundary, "
        "edit a policy that governs it or remove a permissions boundary can make itself "
        "administrator; AWS-IAM-01 does not see that in a grant scoped to `<prefix>-*`.",
    ),
    _c(
        "AWS-IAM-06",
        ROLE,
        "permissionsBoundary",
        "matches",
        r":policy/[\w+=,.@-]+-boundary$",
        "Duty roles carry the stack's permissions boundary",
        "The boundary (`<prefix>-boundary`) caps what any grant gives a duty role, and is what "
        "the CI deploy role must attach to every role it creates or changes.",
        when=("tags.mlops:duty", MISSING),  # every role but the CI deploy role (duty ci)
    ),
    # --- SageMaker endpoint ------------------------------------------------------------------
    _c(
        "AWS-SM-01",
        MODEL,
        "enableNetworkIsolation",
        "equals",
        True,
        "Models run network-isolated",
        "The model container cannot call out, so a compromised model cannot leak data.",
        dev_exception=DEV_SERVERLESS,
    ),
    _c(
        "AWS-SM-02",
        MODEL,
        "vpcConfig.subnets",
        "present",
        None,
        "Models run in the stack's private subnets",
        "Model traffic stays in the VPC.",
        dev_exception=DEV_SERVERLESS,
    ),
    _c(
        "AWS-SM-03",
        ENDPOINT_CONFIG,
        "kmsKeyArn",
        "present",
        None,
        "Endpoint storage is encrypted with the stack key",
        "The ML storage volume holding the model is encrypted with a key the stack controls.",
    ),
    _c(
        "AWS-SM-04",
        ENDPOINT_CONFIG,
        "dataCaptureConfig.kmsKeyId",
        "present",
        None,
        "Captured traffic is encrypted with the stack key",
        "Requests and responses are personal data more often than not.",
        dev_exception=DEV_SERVERLESS,
    ),
    _c(
        "AWS-SM-05",
        ENDPOINT_CONFIG,
        "productionVariants[*].initialInstanceCount",
        "at_least",
        2,
        "Realtime variants run at least two instances",
        "SageMaker spreads instances across zones; one instance is one outage away from none.",
        dev_exception="dev serves from a serverless endpoint or one instance to save cost",
    ),
    _c(
        "AWS-SM-06",
        ENDPOINT,
        "deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration.type",
        "one_of",
        ["CANARY", "LINEAR"],
        "New versions shift traffic gradually",
        "A bad version meets a fraction of traffic before all of it.",
        dev_exception="dev rolls out all at once (the dev tier's rollout.strategy; serverless "
        "endpoints have no deployment guardrails)",
    ),
    _c(
        "AWS-SM-07",
        ENDPOINT,
        "deploymentConfig.autoRollbackConfiguration.alarms[*].alarmName",
        "ref_exists",
        f"{ALARM}#name",
        "Rollback alarms exist in the stack",
        "Automatic rollback only works when the alarms it watches are real.",
        dev_exception=DEV_SERVERLESS,
    ),
    _c(
        "AWS-SM-08",
        DQ_JOB,
        "networkConfig.enableNetworkIsolation",
        "equals",
        True,
        "Monitoring jobs run network-isolated",
        "The analyzer cannot send captured data out.",
    ),
    _c(
        "AWS-SM-09",
        DQ_JOB,
        "networkConfig.enableInterContainerTrafficEncryption",
        "equals",
        True,
        "Monitoring traffic between instances is encrypted",
        "Captured data in flight between job instances is encrypted.",
    ),
    _c(
        "AWS-SM-10",
        DQ_JOB,
        "jobResources.clusterConfig.volumeKmsKeyId",
        "present",
        None,
        "Monitoring volumes are encrypted with the stack key",
        "Captured data on job volumes is encrypted with a key the stack controls.",
    ),
    _c(
        "AWS-SM-11",
        DQ_JOB,
        "dataQualityJobOutputConfig.kmsKeyId",
        "present",
        None,
        "Monitoring reports are encrypted with the stack key",
        "Reports quote captured values.",
    ),
    _c(
        "AWS-SM-12",
        GROUP,
        "$opts.protect",
        "equals",
        True,
        "The model registry is protected",
        "The record of every version and its approval survives `pulumi destroy`.",
        dev_exception=DEV_STORES,
    ),
    _c(
        "AWS-SM-13",
        TRACKING,
        "$opts.protect",
        "equals",
        True,
        "The MLflow tracking server is protected",
        "Run history survives `pulumi destroy`.",
        dev_exception=DEV_STORES,
    ),
    # --- Network -----------------------------------------------------------------------------
    _c(
        "AWS-NET-01",
        SG,
        "ingress[*].cidrBlocks[*]",
        "matches",
        r"^(10\.|172\.(1[6-9]|2\d|3[01])\.|192\.168\.)",
        "Security groups admit only private address ranges",
        "No ingress from the internet (`0.0.0.0/0`) or any public range.",
    ),
    _c(
        "AWS-NET-02",
        SUBNET,
        "mapPublicIpOnLaunch",
        "equals",
        False,
        "Subnets assign no public addresses",
        "Nothing in the stack's subnets is reachable from the internet.",
    ),
    _c(
        "AWS-NET-03",
        VPCE,
        "privateDnsEnabled",
        "equals",
        True,
        "Interface endpoints resolve the public service names privately",
        "SDK calls reach AWS through the VPC without code changes.",
        when=("vpcEndpointType", "Interface"),
    ),
    _c(
        "AWS-NET-04",
        VPC,
        "tags.Name",
        "ref_exists",
        f"{DEFAULT_SG}#tags.mlops:vpc",
        "The VPC's default security group is managed with no rules",
        "AWS gives a new VPC a default group that admits its own members and all egress; "
        "managed empty (AWS-NET-05), a resource that lands in it by mistake can talk to nothing.",
    ),
    _c(
        "AWS-NET-05",
        DEFAULT_SG,
        "ingress",
        "absent",
        None,
        "The default security group admits nothing",
        "No rule means no traffic, in either direction (egress is checked the same way).",
    ),
    _c(
        "AWS-NET-06",
        DEFAULT_SG,
        "egress",
        "absent",
        None,
        "The default security group sends nothing",
        "AWS's default egress rule (all traffic anywhere) is removed.",
    ),
    _c(
        "AWS-NET-07",
        VPC,
        "tags.Name",
        "ref_exists",
        f"{FLOW_LOG}#tags.mlops:vpc",
        "The VPC has flow logs",
        "Without them nobody can tell afterwards what talked to what.",
    ),
    _c(
        "AWS-NET-08",
        FLOW_LOG,
        "trafficType",
        "equals",
        "ALL",
        "VPC flow logs record all traffic",
        "Accepted and rejected flows are the evidence an investigation starts from.",
    ),
    _c(
        "AWS-NET-09",
        LOG_GROUP,
        "kmsKeyId",
        "present",
        None,
        "Log groups are encrypted with the stack key",
        "Flow logs name every peer of every workload: they are kept under the customer key.",
    ),
    _c(
        "AWS-NET-10",
        LOG_GROUP,
        "retentionInDays",
        "at_least",
        90,
        "Log groups keep their logs at least 90 days (and not forever)",
        "Long enough to investigate an incident; a retention is set, so logs do not pile up.",
    ),
    # --- Events, queues, topics, secrets -------------------------------------------------------
    _c(
        "AWS-EVT-01",
        TARGET,
        "deadLetterConfig.arn",
        "present",
        None,
        "Event deliveries have a dead-letter queue",
        "A training start, release or drift alert that cannot be delivered is kept, not lost.",
    ),
    _c(
        "AWS-EVT-02",
        TARGET,
        "retryPolicy.maximumRetryAttempts",
        "at_least",
        1,
        "Event deliveries are retried",
        "A transient failure does not drop a release.",
    ),
    _c(
        "AWS-EVT-03",
        SCHEDULE,
        "target.deadLetterConfig.arn",
        "present",
        None,
        "Scheduled starts have a dead-letter queue",
        "A missed training start is kept.",
    ),
    _c(
        "AWS-EVT-04",
        SCHEDULE,
        "kmsKeyArn",
        "present",
        None,
        "Schedules are encrypted with the stack key",
        "Schedule input is encrypted at rest.",
    ),
    _c(
        "AWS-EVT-05",
        CONNECTION,
        "kmsKeyIdentifier",
        "present",
        None,
        "The CI token is encrypted with the stack key",
        "The EventBridge connection keeps the token in Secrets Manager under the stack key.",
    ),
    _c(
        "AWS-SQS-01",
        QUEUE,
        "kmsMasterKeyId",
        "present",
        None,
        "Queues are encrypted with the stack key",
        "Dead letters carry event payloads.",
    ),
    _c(
        "AWS-SNS-01",
        TOPIC,
        "kmsMasterKeyId",
        "present",
        None,
        "Alert topics are encrypted with the stack key",
        "Alerts describe the system.",
    ),
    # --- Batch scoring (components/aws/batch.py) -----------------------------------------------
    _c(
        "AWS-BATCH-01",
        MODEL,
        "enableNetworkIsolation",
        "equals",
        True,
        "Batch models run network-isolated, in every tier",
        "A batch transform container reads whole files of data; it must not be able to call "
        "out. Unlike a serverless endpoint, batch transform supports isolation, so dev has no "
        "exception.",
        when=("tags.mlops:purpose", "batch-scoring"),
    ),
    _c(
        "AWS-BATCH-02",
        PIPELINE,
        "pipelineDefinition",
        "matches",
        r'"VolumeKmsKeyId": "arn:aws[\w-]*:kms:',
        "Batch transform volumes are encrypted with the stack key",
        "The ML storage volume holds the input files and the model while a batch job runs.",
        when=("tags.mlops:purpose", "batch-scoring"),
    ),
    _c(
        "AWS-BATCH-03",
        PIPELINE,
        "pipelineDefinition",
        "matches",
        r'"TransformOutput": \{[^{}]*"KmsKeyId": "arn:aws[\w-]*:kms:',
        "Batch predictions are written encrypted with the stack key",
        "Predictions are derived personal data as often as the inputs are.",
        when=("tags.mlops:purpose", "batch-scoring"),
    ),
    _c(
        "AWS-BATCH-04",
        MODEL,
        "tags.mlops:model-version",
        "present",
        None,
        "Batch models serve a pinned model package version",
        "Every prediction file traces back to one registered, approved version.",
        when=("tags.mlops:purpose", "batch-scoring"),
    ),
)

# --- Keyless CI identity (components/aws/ci_identity.py) -----------------------------------
_CI_ROLE = ("tags.mlops:duty", "ci")
CONTROLS = CONTROLS + (
    _c(
        "AWS-CI-01",
        ROLE,
        "assumeRolePolicy",
        "matches",
        r'"token\.actions\.githubusercontent\.com:sub":\s*"repo:[^"*]+/[^"*]+:'
        r'(environment:[^"*]+|ref:refs/heads/[^"*]+)"'
        r'|"vstoken\.dev\.azure\.com/[0-9a-f-]{36}:sub":\s*"sc://[^"*?/]+/[^"*?/]+/[^"*?/]+"',
        "The CI role trusts one repository and one protected environment or branch (or one "
        "Azure DevOps service connection)",
        "A workflow of another repository, branch, pull request or environment, or a pipeline "
        "of another organization, project or service connection, cannot assume it.",
        when=_CI_ROLE,
    ),
    _c(
        "AWS-CI-02",
        ROLE,
        "assumeRolePolicy",
        "matches",
        r'^(?![\s\S]*StringLike)[\s\S]*("token\.actions\.githubusercontent\.com:aud":\s*'
        r'"sts\.amazonaws\.com"'
        r'|"vstoken\.dev\.azure\.com/[0-9a-f-]{36}:aud":\s*"api://AzureADTokenExchange")',
        "The CI role's trust matches the token exactly (audience pinned, no wildcards)",
        "StringLike patterns in an OIDC trust have let other repositories' tokens in.",
        when=_CI_ROLE,
    ),
    _c(
        "AWS-CI-03",
        ROLE,
        "maxSessionDuration",
        "at_most",
        3600,
        "CI sessions last at most an hour",
        "A leaked session credential expires quickly; CI holds nothing longer-lived.",
        when=_CI_ROLE,
    ),
    _c(
        "AWS-CI-04",
        ROLE,
        "assumeRolePolicy",
        "oidc_trust_pinned",
        None,
        "Every OIDC trust statement of the CI role pins its subject and audience exactly",
        "AWS-CI-01 and AWS-CI-02 find one pinned statement; a second CI system's statement "
        "(Azure DevOps beside GitHub) with a loose or missing `sub` would let any of that "
        "issuer's tokens in.",
        when=_CI_ROLE,
    ),
)

# --- Clarify explainability step (explain.clarify; pipelines/compilers/sagemaker.py) ----------
# A pipeline without the Clarify image passes vacuously; with it, the Clarify job's own
# arguments (up to the step's "Name") must carry the setting.
_NO_CLARIFY = r"^(?!.*sagemaker-clarify-processing)"
_CLARIFY_JOB = r'sagemaker-clarify-processing:[^"]*"\}'
_SAME_STEP = r'(?:(?!"Name": ).)*'
_KMS = r'"arn:aws[\w-]*:kms:'
CONTROLS = CONTROLS + (
    _c(
        "AWS-CLARIFY-01",
        PIPELINE,
        "pipelineDefinition",
        "matches",
        rf'{_NO_CLARIFY}|{_CLARIFY_JOB}{_SAME_STEP}"ProcessingOutputConfig": \{{"KmsKeyId": {_KMS}'
        rf'{_SAME_STEP}"VolumeKmsKeyId": {_KMS}',
        "The Clarify explainability job encrypts its volume and report with the stack key",
        "Clarify reads the test data and writes per-row SHAP values; like every job it keeps "
        "them under the customer-managed key.",
    ),
    _c(
        "AWS-CLARIFY-02",
        PIPELINE,
        "pipelineDefinition",
        "matches",
        rf'{_NO_CLARIFY}|{_CLARIFY_JOB}, "NetworkConfig": \{{[^{{}}]*"VpcConfig": \{{',
        "The Clarify explainability job runs in the stack's VPC",
        "Clarify calls the SageMaker API to run a shadow endpoint, so it cannot be "
        "network-isolated like the other jobs; the private subnets and their VPC endpoints "
        "stand in for isolation.",
        dev_exception="dev uses public networking (`network.mode` public): no VPC to run in",
    ),
)
