"""Every trial replicate exactly once in the tables, whatever Tune's results repeat or miss."""

from disentune.search.outcome import NO_RECORD, TrialOutcome, one_per_replicate


def _o(number, status, replicate=0, trial_id="t"):
    return TrialOutcome(number=number, trial_id=f"{trial_id}{number}", params={"lambda_tc": float(number)},
                        status=status, error=None if status == "ok" else "died", replicate=replicate)


def test_a_restarted_replicate_keeps_its_finished_attempt_and_a_missing_one_is_failed():
    # #1 died once and finished on its restart (both in Tune's results, failed first or last);
    # #2 replicate 1 left no record at all (its process died as it started)
    given = [_o(0, "ok"), _o(0, "ok", 1), _o(1, "failed"), _o(1, "ok"), _o(1, "ok", 1), _o(1, "failed", 1),
             _o(2, "ok"), _o(3, "stopped"), _o(3, "failed"), _o(3, "ok", 1)]
    got = one_per_replicate(given, range(4), 2, lambda n: {"lambda_tc": 10.0 + n})
    assert [(o.number, o.replicate) for o in got] == [(n, r) for n in range(4) for r in range(2)]
    status = {(o.number, o.replicate): o.status for o in got}
    assert status[(1, 0)] == status[(1, 1)] == "ok" and status[(3, 0)] == "stopped"
    missing = got[5]
    assert (missing.number, missing.replicate, missing.status) == (2, 1, "failed")
    assert missing.error == NO_RECORD and missing.params == {"lambda_tc": 12.0}


def test_nothing_changes_when_every_replicate_is_there_once():
    given = [_o(1, "ok"), _o(0, "failed")]
    assert one_per_replicate(given, range(2), 1, dict) == [given[1], given[0]]
