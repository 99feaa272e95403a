"""Who approved this Azure DevOps run's environment check: the release pipeline's staging and
prod jobs pass it to `mlops promote --approved-by` (the approval check held the stage until
then). Reads the project's approvals (REST `_apis/pipelines/approvals`, with the job's
System.AccessToken) and prints the approver of the newest approved approval of this run, or
exits 1 with the reason. Azure DevOps's own equivalent of GitHub's run approvals API.

    python ci/azure_devops_approver.py      (env: SYSTEM_COLLECTIONURI, SYSTEM_TEAMPROJECT,
                                             BUILD_BUILDID, SYSTEM_ACCESSTOKEN)
"""

from __future__ import annotations

import json
import os
import sys
import urllib.parse
import urllib.request
from typing import Any


def approver(approvals: list[dict[str, Any]], run_id: str) -> str | None:
    """The approver of the newest approved approval whose pipeline run is `run_id`."""
    done = []
    for approval in approvals:
        owner = str((approval.get("pipeline") or {}).get("owner", {}).get("id", ""))
        if owner != str(run_id) or approval.get("status") != "approved":
            continue
        for step in approval.get("steps") or []:
            who = step.get("actualApprover") or {}
            if step.get("status") == "approved" and who.get("uniqueName"):
                done.append((str(step.get("lastModifiedOn") or ""), who["uniqueName"]))
    return max(done)[1] if done else None


def main() -> int:
    env = os.environ
    base = env["SYSTEM_COLLECTIONURI"].rstrip("/")
    project = urllib.parse.quote(env["SYSTEM_TEAMPROJECT"])
    url = f"{base}/{project}/_apis/pipelines/approvals?$expand=steps&api-version=7.1"
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {env['SYSTEM_ACCESSTOKEN']}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - https only
        approvals = json.load(response).get("value", [])
    found = approver(approvals, env["BUILD_BUILDID"])
    if not found:
        print(
            f"no approved environment check on run {env['BUILD_BUILDID']}: give the "
            "environment an Approvals check (docs/releases.md)",
            file=sys.stderr,
        )
        return 1
    print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
