"""Errors a command can meet. Each message says what is wrong and what would make it right."""

from __future__ import annotations


class EscalationError(Exception):
    """Base of every error the domain raises on purpose."""


class InvalidCommandError(EscalationError):
    """The command itself is malformed: a missing name, an unknown region, a time in the future."""


class IllegalTransitionError(EscalationError):
    """The command is well formed but the escalation is not in a state that allows it."""


class VersionConflictError(EscalationError):
    """Someone else changed the escalation since the caller last read it."""


class EscalationNotFoundError(EscalationError):
    """No escalation has the given id."""


class DeadlineSettledError(IllegalTransitionError):
    """A deadline the ledger's watcher fires is already settled: nothing more to record for it."""


class DeadlineAlreadyFiredError(DeadlineSettledError):
    """The deadline with this id already recorded its event (a retry, a second watcher, a rebuild)."""


class DeadlineNoLongerDueError(DeadlineSettledError):
    """What the deadline waited for happened meanwhile (an update came, monitoring was interrupted)."""
