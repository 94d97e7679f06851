from __future__ import annotations

import pytest

from iotdb_mqtt.codec import InvalidTopicFilter, InvalidTopicName, validate_topic_filter, validate_topic_name


@pytest.mark.parametrize("topic", ["root/sg/d1", "/", "a//b", "$SYS/x", " ", "température/水"])
def test_valid_topic_names(topic: str) -> None:
    validate_topic_name(topic)


@pytest.mark.parametrize("topic", ["", "a/+", "a/#", "+", "a#b", "a\x00b"])
def test_invalid_topic_names(topic: str) -> None:
    with pytest.raises(InvalidTopicName):
        validate_topic_name(topic)


@pytest.mark.parametrize(
    "topic_filter",
    [
        "#",
        "+",
        "a/#",
        "a/+/b",
        "+/+",
        "/+",
        "+/",
        "a//#",
        "root/sg/+",
        "$share/g/a/#",
        "$share/g/#",
        "$SYS/#",
    ],
)
def test_valid_topic_filters(topic_filter: str) -> None:
    validate_topic_filter(topic_filter)


@pytest.mark.parametrize(
    "topic_filter",
    [
        "",
        "a#",
        "a/#/b",
        "#/",
        "a/b#",
        "a+",
        "a/+b/c",
        "++",
        "$share/g",
        "$share//a",
        "$share/g+/a",
        "$share/g/",
        "$share/g/a#",
        "x\x00",
    ],
)
def test_invalid_topic_filters(topic_filter: str) -> None:
    with pytest.raises(InvalidTopicFilter):
        validate_topic_filter(topic_filter)


def test_share_prefix_is_plain_text_without_shared_syntax() -> None:
    """MQTT 3.1.1 has no shared subscriptions: '$share/g' is an ordinary filter there."""
    validate_topic_filter("$share/g", shared=False)
    with pytest.raises(InvalidTopicFilter):
        validate_topic_filter("$share/g", shared=True)


def test_error_reason_codes() -> None:
    with pytest.raises(InvalidTopicName) as name_error:
        validate_topic_name("a/+")
    assert name_error.value.reason_code == 0x90
    with pytest.raises(InvalidTopicFilter) as filter_error:
        validate_topic_filter("a/#/b")
    assert filter_error.value.reason_code == 0x8F
