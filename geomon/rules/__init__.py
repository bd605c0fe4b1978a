"""Alert rules: the packaged rules file (default.toml, the one source of every threshold's default),
profiles resolved through ``inherits``, special periods, and the threshold sets the detectors read.
May import: geomon.errors, geomon.schema.
"""

from geomon.rules.load import THRESHOLD_KEYS, Rules, default_rules, default_rules_text, load_rules
from geomon.rules.periods import Period, ThresholdSets

__all__ = ["Period", "Rules", "THRESHOLD_KEYS", "ThresholdSets", "default_rules", "default_rules_text", "load_rules"]
