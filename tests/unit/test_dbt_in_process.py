"""What running dbt in the step's process changes of dbt's own behaviour, and what it must not."""

from dbt_common.behavior_flags import Behavior, BehaviorFlagRendered

from orchestration.defs.warehouse.dbt_in_process import _command, _quick_behavior_flag_source

FLAG = {"name": "some_flag", "default": False, "description": "a flag for the test"}


def _made_here():
    """Behaviour flags as an adapter makes them, a few frames down."""
    return Behavior([FLAG], {})


def test_behaviour_flags_name_the_same_module_without_reading_every_frame_s_source():
    expected = _made_here().some_flag._behavior_change_event.flag_source
    with _quick_behavior_flag_source():
        quick = _made_here().some_flag._behavior_change_event.flag_source
        assert BehaviorFlagRendered._default_source() == __name__
    assert quick == expected == __name__
    assert BehaviorFlagRendered._default_source.__module__ == "dbt_common.behavior_flags", "put back after"


def test_the_dbt_command_is_the_first_word_after_the_executable_that_is_not_a_flag():
    assert _command(["dbt", "build", "--select", "x"]) == "build"
    assert _command(["dbt", "--no-use-colors", "parse"]) == "parse"
    assert _command(["dbt"]) is None
