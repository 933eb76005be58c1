"""The planner queues users with alert rules every cycle: tagged in their active message, or in
messages of tier "alerts" of their own; they still get their idle pass."""

from __future__ import annotations

from collections.abc import Iterator

from tests.unit.refresh.test_refresh_planner import RecentReaders, plan


class Alerting:
    def __init__(self, user_ids: list[str], *, fails: bool = False) -> None:
        self.user_ids = user_ids
        self.fails = fails

    def iter_alerting_users(self, page_size: int = 1000) -> Iterator[list[str]]:
        if self.fails:
            raise ConnectionError("DynamoDB unreachable")
        yield list(self.user_ids)


def test_given_readers_and_users_with_rules_when_planned_then_every_rule_holder_is_named_once_per_cycle():
    # Given 12 users: 2 read lately (one of them has rules), 2 others have rules and read nothing
    readers = RecentReaders(["user-0000001", "user-0000002"])
    alerting = Alerting(["user-0000002", "user-0000007", "user-0000009"])

    sqs, result = plan(12, activity=readers, alerting=alerting)

    bodies = sqs.bodies()
    # Then the reader with rules is tagged in its active message
    assert bodies[0]["tier"] == "active"
    assert bodies[0]["alertUserIds"] == ["user-0000002"]
    # And the others with rules come in a message of their own, all of them tagged
    alerts = [body for body in bodies if body["tier"] == "alerts"]
    assert [(body["userIds"], body["alertUserIds"]) for body in alerts] == [
        (["user-0000007", "user-0000009"], ["user-0000007", "user-0000009"])
    ]
    # And nobody's rules are evaluated twice, while users with rules still get their idle pass
    tagged = [user for body in bodies for user in body.get("alertUserIds", [])]
    assert sorted(tagged) == sorted(alerting.user_ids)
    idle = {user for body in bodies if body["tier"] == "idle" for user in body["userIds"]}
    assert {"user-0000007", "user-0000009"} <= idle
    assert not any("alertUserIds" in body for body in bodies if body["tier"] == "idle")
    assert result.alert_users == 3


def test_given_no_user_with_rules_when_planned_then_messages_read_as_before():
    sqs, _ = plan(5, activity=RecentReaders(["user-0000001"]), alerting=Alerting([]))

    assert all("alertUserIds" not in body for body in sqs.bodies())
    assert {body["tier"] for body in sqs.bodies()} == {"active", "idle"}


def test_given_the_rule_holders_cannot_be_listed_when_planned_then_everyone_else_is_queued_all_the_same():
    sqs, result = plan(6, activity=RecentReaders(["user-0000001"]), alerting=Alerting(["user-0000003"], fails=True))

    assert result.users_queued == 6
    assert {body["tier"] for body in sqs.bodies()} == {"active", "idle"}
    assert result.alert_users == 0
