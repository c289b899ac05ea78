"""Test-session settings shared by every test module."""

import os
from pathlib import Path

# Tests that point $ALIGNLAB_CACHE at a temporary folder (to isolate verdict caches) still
# reuse the offline intent judge's trained weights instead of training it again (minutes).
os.environ.setdefault(
    "ALIGNLAB_JUDGE_MODELS",
    str(Path(os.environ.get("ALIGNLAB_CACHE") or Path.home() / ".cache" / "alignlab") / "judges"))
