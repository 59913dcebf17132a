"""One partition of the intake asset per reception (an arrival of a file).

Why dynamic partitions keyed by reception rather than site x period: the
period of a file is only known once it is parsed, a file may cover several
periods, and every arrival (a duplicate too) deserves its own status and
receipt. One run loads all receptions of a sensor tick (single-run backfill
policy over the tick's contiguous range of keys), so a national cycle with
thousands of files is one run, not thousands.
"""

import dagster as dg

submissions_partitions = dg.DynamicPartitionsDefinition(name="submissions")

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def range_tags(keys: list[str]) -> dict[str, str]:
    """Run tags that select the contiguous range of partitions ``keys`` (added together, in order)."""
    return {RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]}
