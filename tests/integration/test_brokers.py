"""The test broker starts whatever random cluster id it draws."""

from __future__ import annotations

import pytest

from infra.local import brokers
from infra.local.brokers import ApacheKafka, answers_metadata

pytestmark = pytest.mark.kafka


def test_a_cluster_id_that_starts_with_a_dash_still_formats_and_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(brokers, "_kafka_cluster_id", lambda: "-" + "A" * 21)  # one id in 64 looks like this

    with ApacheKafka() as broker:
        assert answers_metadata(broker.bootstrap_servers)
