"""Entry point the Pulumi policy analyzer runs (`pulumi preview --policy-pack policy`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the kit's project root

from policy.pack import build_pack  # noqa: E402

build_pack()
