"""The refresh pipeline's wiring: schedule -> scheduler -> queue (with DLQ) -> price updater."""

from __future__ import annotations

from tests.infra.sam import Stack

SIX_TIMES = 6


def _parameter_default(sam_template, name: str):
    return sam_template["Parameters"][name]["Default"]


def test_given_the_schedule_then_its_rate_comes_from_the_parameter_defaulting_to_five_minutes(
    stack: Stack, sam_template
):
    (rule, *others) = stack.of_type("AWS::Events::Rule").values()

    assert others == []
    assert rule["ScheduleExpression"] == {"Ref": "RefreshScheduleExpression"}
    assert _parameter_default(sam_template, "RefreshScheduleExpression") == "rate(5 minutes)"
    assert rule["Targets"][0]["Arn"] == {"Ref": "RefreshSchedulerFunctionAliaslive"}


def test_given_a_failed_scheduler_run_then_lambda_does_not_retry_it_and_runs_never_overlap(stack: Stack):
    (invoke_config,) = stack.of_type("AWS::Lambda::EventInvokeConfig").values()

    assert invoke_config["FunctionName"] == {"Ref": "RefreshSchedulerFunction"}
    assert invoke_config["Qualifier"] == "live"
    assert invoke_config["MaximumRetryAttempts"] == 0
    assert stack.properties("RefreshSchedulerFunction")["ReservedConcurrentExecutions"] == 1


def test_given_the_updater_then_it_consumes_the_refresh_queue_reporting_failures_per_message(stack: Stack):
    mapping = stack.event_source_mapping("RefreshQueue")

    assert mapping["FunctionName"] == {"Ref": "PriceUpdaterFunctionAliaslive"}
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["RefreshQueue", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == {"Ref": "UpdaterBatchSize"}
    assert mapping["MaximumBatchingWindowInSeconds"] == {"Ref": "UpdaterBatchingWindowSeconds"}
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "UpdaterMaximumConcurrency"}}


def test_given_the_longest_updater_run_then_a_message_stays_invisible_until_it_ends(stack: Stack, sam_template):
    # AWS: visibility timeout >= 6x the function timeout, plus the batching window.
    timeout = stack.properties("PriceUpdaterFunction")["Timeout"]
    longest_window = sam_template["Parameters"]["UpdaterBatchingWindowSeconds"]["MaxValue"]

    visibility = stack.properties("RefreshQueue")["VisibilityTimeout"]

    assert visibility >= SIX_TIMES * timeout + longest_window


def test_given_a_message_that_keeps_failing_then_it_moves_to_the_dead_letter_queue(stack: Stack, sam_template):
    redrive = stack.properties("RefreshQueue")["RedrivePolicy"]

    assert redrive == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["RefreshDeadLetterQueue", "Arn"]},
        "maxReceiveCount": {"Ref": "MaxReceiveCount"},
    }
    assert _parameter_default(sam_template, "MaxReceiveCount") == 3
    dead_letters = stack.properties("RefreshDeadLetterQueue")
    assert dead_letters["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert dead_letters["MessageRetentionPeriod"] > stack.properties("RefreshQueue")["MessageRetentionPeriod"]


def test_given_both_queues_then_messages_are_encrypted_at_rest(stack: Stack):
    for queue in stack.of_type("AWS::SQS::Queue").values():
        assert queue["SqsManagedSseEnabled"] is True
