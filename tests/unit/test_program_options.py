"""The program refuses, before registering it, a resource whose retainOnDelete fails the
stack's tier: the one check a policy pack cannot make (the engine does not pass the option)."""

from __future__ import annotations

import pulumi
import pytest
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from core.config import (
    apply_project_defaults,
    existing_stack_file,
    load_stack,
    read_stack_file,
)
from core.controls import PLATFORM_OF_BLUEPRINT, all_controls, seen_by_policy_packs
from mlops import plan as plan_mod
from mlops.program import (
    UNSEEN_OPTION_CONTROLS,
    main,
    refuse_unseen_option_failures,
)
from pipelines.release import GUARD_ENV

BUCKET = "aws:s3/bucket:Bucket"


def _args(type_: str, retain: bool) -> pulumi.ResourceTransformationArgs:
    opts = pulumi.ResourceOptions(protect=retain, retain_on_delete=retain)
    return pulumi.ResourceTransformationArgs(None, type_, "acme-x-store", {}, opts)  # type: ignore[arg-type]


def test_the_controls_a_pack_cannot_see_are_all_checked_by_the_program_or_the_plan():
    unseen = {c.id for c in all_controls() if not seen_by_policy_packs(c)}
    assert {c.id for c in UNSEEN_OPTION_CONTROLS} == unseen - {"K8S-NS-05"}  # plan: namespaces


@pytest.mark.parametrize("stack", ["acme-prod", "acme-staging"])
def test_an_unretained_bucket_is_refused_in_the_prod_like_tiers(stack: str):
    check = refuse_unseen_option_failures(load_stack(stack))
    with pytest.raises(pulumi.RunError, match=r"AWS-S3-19 Buckets are retained on delete"):
        check(_args(BUCKET, retain=False))
    assert check(_args(BUCKET, retain=True)) is None


def test_dev_waives_it_and_other_types_are_not_judged():
    assert refuse_unseen_option_failures(load_stack("acme-dev"))(_args(BUCKET, False)) is None
    prod = refuse_unseen_option_failures(load_stack("acme-prod"))
    assert prod(_args("aws:sns/topic:Topic", retain=False)) is None
    assert prod(_args("mlops:aws:ArtifactStore", retain=False)) is None  # a component


@pytest.mark.parametrize("stack", ["acme-prod", "globex-prod"])
def test_main_builds_a_prod_stack_under_mocks_with_the_check_on(
    stack: str, monkeypatch: pytest.MonkeyPatch
):
    """`pulumi up` as the engine runs __main__.py (under the plan's mocks): main registers the
    check with the stack's tier, and every stateful store passes it."""
    registered = []
    real = pulumi.runtime.register_stack_transformation

    def keep(transformation):  # the SDK's function, spied on: what main registers
        registered.append(transformation)
        real(transformation)

    monkeypatch.setattr(pulumi.runtime, "register_stack_transformation", keep)
    monkeypatch.setenv(GUARD_ENV, stack)
    values, secrets = read_stack_file(existing_stack_file(stack))
    platform = PLATFORM_OF_BLUEPRINT[load_stack(stack).blueprint]
    mocks = plan_mod.RecordingMocks(platform)
    monitor = plan_mod.RecordingMonitor(mocks)
    pulumi_settings.reset_options(project=plan_mod.PROJECT, stack=stack, preview=False)
    set_all_config(plan_mod._config_for_pulumi(apply_project_defaults(values)), sorted(secrets))
    pulumi_mocks.set_mocks(
        mocks, project=plan_mod.PROJECT, stack=stack, preview=False, monitor=monitor
    )
    _sync_await(run_pulumi_func(main))
    assert [r for r in monitor.records if r.options["retainOnDelete"]], "nothing was judged"
    (check,) = registered
    store = next(c.resource_type for c in UNSEEN_OPTION_CONTROLS if c.platform == platform)
    with pytest.raises(pulumi.RunError, match="fails the prod tier before it is registered"):
        check(_args(store, retain=False))
