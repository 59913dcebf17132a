"""The positive-deviance rule: reliably better, in consecutive periods."""

import pandas as pd

from orchestration.stats import positive_deviants


def results():
    rows = []
    # A: better in Q2 and Q3 -> positive deviant at Q3 (streak 2).
    # B: better in Q1 and Q3 but not Q2 -> never two in a row.
    # C: interval below 1 in Q2, Q3 but reliability 0.3 -> not reliable.
    # D: better in Q1, no row for Q2, better in Q3 -> the gap breaks the streak.
    # E: interval not below 1, but a low flag on the adjusted funnel in Q2 and Q3.
    table = {
        "A": [(1.10, 0.6), (0.90, 0.6), (0.95, 0.7)],
        "B": [(0.90, 0.8), (1.05, 0.8), (0.85, 0.8)],
        "C": [(0.80, 0.3), (0.70, 0.3), (0.70, 0.3)],
        "D": [(0.80, 0.5), None, (0.80, 0.5)],
        "E": [(1.20, 0.5), (1.02, 0.5), (1.01, 0.5)],
    }
    flags = {"E": ["within", "low", "low"]}
    for site, values in table.items():
        for k, value in enumerate(values):
            if value is None:
                continue
            rows.append(
                {
                    "site": site,
                    "period": f"2024Q{k + 1}",
                    "shrunken_oe_upper_95": value[0],
                    "reliability": value[1],
                    "flag": flags.get(site, ["within"] * 3)[k],
                }
            )
    return pd.DataFrame(rows).sample(frac=1, random_state=3)  # order must not matter


def test_positive_deviant_needs_a_reliable_low_outlier_in_two_consecutive_periods():
    out = positive_deviants(results(), funnel_flag="flag").set_index(["site", "period"])
    deviant = {key for key, value in out["positive_deviant"].items() if value}
    assert deviant == {("A", "2024Q3"), ("E", "2024Q3")}
    assert out.loc[("A", "2024Q3"), "streak"] == 2
    assert out.loc[("B", "2024Q3"), "streak"] == 1
    assert not out.loc[("C", "2024Q2"), "reliable"] and out.loc[("C", "2024Q2"), "better_outlier"]
    assert out.loc[("D", "2024Q3"), "streak"] == 1


def test_without_the_funnel_flag_only_the_interval_counts():
    out = positive_deviants(results())
    assert set(out.loc[out["positive_deviant"], "site"]) == {"A"}


def test_longer_streak_requirement_and_explicit_period_order():
    out = positive_deviants(results(), funnel_flag="flag", min_consecutive=3)
    assert not out["positive_deviant"].any()
    frame = results()
    frame["period"] = frame["period"].map({"2024Q1": "jan", "2024Q2": "feb", "2024Q3": "mar"})
    out = positive_deviants(frame, periods=["jan", "feb", "mar"])
    assert set(out.loc[out["positive_deviant"], "period"]) == {"mar"}
