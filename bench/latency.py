"""End to end: from a command's response to its effect being visible in the reporting read model.

Deployed as in production: `escalations relay` and `escalations consume reporting` run as their own
processes with default settings; this process issues commands on the SQLite event store and polls
the read model. Measured at idle (one command at a time, at irregular intervals so the probes do
not fall into step with the relay's poll) and under a steady load of stories recorded alongside.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import sqlalchemy as sa
from rich.console import Console
from rich.progress import Progress

from bench import history
from bench.results import Latency, percentile
from domain import commands as c
from domain.service import EscalationService
from infra.bootstrap import build_service, prepare_topics, read_model_engine
from infra.settings import Settings

VISIBLE = sa.text("SELECT version FROM escalations WHERE escalation_id = :id")
POLL_SECONDS = 0.0005


@contextlib.contextmanager
def deployed(settings: Settings, log: Path) -> Iterator[None]:
    """The relay and one reporting consumer, each in its own process."""
    env = {**os.environ, **settings.as_env()}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "infra", *args], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
        )
        for args in (["relay"], ["consume", "reporting"])
    ]
    try:
        yield
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)


def open_one(service: EscalationService, customer: str) -> tuple[str, float]:
    result = service.handle(
        c.OpenEscalation(
            customer=customer,
            region="EMEA",
            account_owner="dana.owner",
            dri_manager="mia.manager",
            source="support_manager",
            severity="high",
            summary="latency probe",
        ),
        actor="mia.manager",
    )
    return str(result.escalation_id), time.perf_counter()


def seconds_until_visible(read_model: sa.Engine, escalation_id: str, since: float, timeout: float = 30) -> float:
    with read_model.connect() as conn:
        while conn.execute(VISIBLE, {"id": escalation_id}).scalar() is None:
            conn.rollback()  # a fresh snapshot for the next look
            if time.perf_counter() - since > timeout:
                msg = f"escalation {escalation_id} did not reach the read model within {timeout}s"
                raise TimeoutError(msg)
            time.sleep(POLL_SECONDS)
    return time.perf_counter() - since


def probe(service: EscalationService, read_model: sa.Engine, samples: int, label: str, console: Console) -> list[float]:
    rng = random.Random(11)
    found = []
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"end to end, {label}", total=samples)
        for n in range(samples):
            escalation_id, answered = open_one(service, f"Probe {label} {n}")
            found.append(seconds_until_visible(read_model, escalation_id, answered) * 1000)
            bar.advance(task)
            time.sleep(rng.uniform(0.01, 0.06))
    return found


class SteadyLoad:
    """Stories recorded at a steady pace from another thread, on escalations of their own."""

    def __init__(self, service: EscalationService, escalations_per_second: float) -> None:
        self.service = service
        self.interval = 1 / escalations_per_second
        self.events = 0
        self.seconds = 0.0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steady-load", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        began = next_at = time.perf_counter()
        for escalation_id in history.escalations(self.service, 1_000_000, seed=99, first=5_000_000):
            self.events += self.service.state(escalation_id)["version"]
            next_at += self.interval
            if self._stopping.wait(max(0.0, next_at - time.perf_counter())):
                break
        self.seconds = time.perf_counter() - began

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def stage(settings: Settings, work: Path, samples: int, console: Console, broker: str) -> list[Latency]:
    settings = settings.but(data_dir=work, read_model_url=f"sqlite:///{work / 'latency-read-model.db'}")
    prepare_topics(settings)
    service = build_service(settings)
    read_model = read_model_engine(settings)
    with deployed(settings, work / "latency.log"):
        # Warm-up: once this is visible, the consumer has joined and the relay is publishing.
        escalation_id, answered = open_one(service, "Probe warm-up")
        try:
            seconds_until_visible(read_model, escalation_id, answered, timeout=120)
        except TimeoutError as error:
            msg = f"{error}: the relay or the consumer did not start; see {work / 'latency.log'}"
            raise TimeoutError(msg) from None
        idle = probe(service, read_model, samples, "idle", console)
        with SteadyLoad(service, escalations_per_second=20) as load:
            busy = probe(service, read_model, samples, "under load", console)
    results = [idle, busy]
    names = ["idle", f"steady load, {load.rate:,.0f} events/s"]
    return [
        Latency(name, len(found), percentile(found, 0.5), percentile(found, 0.99), max(found), broker=broker)
        for name, found in zip(names, results, strict=True)
    ]
