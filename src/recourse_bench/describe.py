"""What ``recourse-bench list KIND NAME`` prints about one plugin.

The summary is the first paragraph of the plugin's docstring; the parameters are those of its
``__init__`` with their defaults, the values their declared ``parameter_constraints`` admit
(else the type its numpydoc ``Parameters`` section gives) and the first line of their
description. Metrics show their stage, direction and
bounds; methods what they need from a model; datasets their size and natural shift.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from . import registry
from .api import Component, Metric, RecourseMethod, Trainer, describe_constraints

_HEADING = re.compile(r"^(\w[\w ]*)\n-{3,}$", re.MULTILINE)
_ENTRY = re.compile(r"^(\w+(?:\s*,\s*\w+)*)\s*:\s*(.*)$")
_DEFAULT = re.compile(r",?\s*(?:default|optional)\b.*$")


def docstring_sections(doc: str) -> dict[str, str]:
    """A numpydoc docstring's sections by heading; its first paragraph is ``summary``."""
    doc = inspect.cleandoc(doc or "")
    parts = _HEADING.split(doc)
    sections = {"summary": parts[0].strip().split("\n\n")[0]}
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        sections[heading.strip()] = body.strip("\n")
    return sections


def parameter_docs(doc: str) -> dict[str, tuple[str, str]]:
    """Per parameter of a numpydoc ``Parameters`` section: (type line, first description line)."""
    found: dict[str, tuple[str, str]] = {}
    current: list[str] = []
    for line in docstring_sections(doc).get("Parameters", "").splitlines():
        match = _ENTRY.match(line) if line and not line[0].isspace() else None
        if match:
            current = [n.strip() for n in match.group(1).split(",")]
            kind = _DEFAULT.sub("", match.group(2)).strip()
            for name in current:
                found[name] = (kind, "")
        elif line.strip() and current:
            for name in current:
                kind, text = found[name]
                if not text:
                    found[name] = (kind, line.strip())
    return found


def describe(kind: str, name: str) -> str:
    """The description of a registered plugin, for the terminal."""
    plugin = registry.get(kind, name)
    if isinstance(plugin, Metric):
        return _describe_metric(plugin)
    doc = inspect.getdoc(plugin) or ""
    lines = [f"{kind} {name} ({plugin.__module__}.{plugin.__qualname__})", ""]
    summary = docstring_sections(doc)["summary"]
    lines += [summary or "(no docstring)", ""]
    lines += _capabilities(plugin)
    lines.append("parameters:" if plugin.param_names() else "parameters: none")
    documented: dict[str, tuple[str, str]] = {}
    for cls in reversed(plugin.__mro__):  # a subclass's words win over its base class's
        documented.update(parameter_docs(cls.__doc__ or ""))
    defaults = plugin.param_defaults()
    for param in plugin.param_names():
        default = repr(defaults[param]) if param in defaults else "(required)"
        kind_line, text = documented.get(param, ("", ""))
        allowed = plugin.parameter_constraints.get(param)
        if allowed is not None:
            kind_line = describe_constraints(allowed)
        lines.append(f"  {param} = {default}" + (f"    [{kind_line}]" if kind_line else ""))
        if text:
            lines.append(f"      {text}")
    return "\n".join(lines).rstrip() + "\n"


def shift_support(trainer_class: type[Trainer]) -> dict[str, str | None]:
    """Per registered shift, why it cannot update this trainer's models (None where it can).

    Judged on the trainer with its default parameters, by each shift's
    :meth:`~recourse_bench.api.Shift.not_applicable` (the capabilities it needs).
    """
    trainer = trainer_class()
    return {
        name: registry.get("shift", name)().not_applicable(trainer)
        for name in registry.available("shift")
    }


def shift_summary(trainer_class: type[Trainer]) -> str:
    """``shifts: all`` or ``shifts: all but architecture (why)`` for one trainer."""
    support = shift_support(trainer_class)
    refused = {name: why for name, why in support.items() if why}
    if not refused:
        return "shifts: all"
    return "shifts: all but " + "; ".join(f"{name} ({why})" for name, why in refused.items())


def method_needs(method: type[RecourseMethod]) -> list[str]:
    """Two lines: what a method needs of a model, and the registered models that provide it."""
    needs = method.tags.needs
    trainers = [registry.get("model", name) for name in registry.available("model")]
    runs_on = [t.name for t in trainers if method.tags.runs_on(t)]
    return [
        f"needs: {', '.join(needs) or 'predictions only'}",
        f"runs on: {', '.join(runs_on) or 'no registered model'}",
    ]


def _capabilities(plugin: type[Component]) -> list[str]:
    """What a method needs, which shifts apply to a model, a dataset's size and natural shift."""
    lines = []
    if issubclass(plugin, Trainer):
        lines.append(shift_summary(plugin))
    if issubclass(plugin, RecourseMethod):
        lines.extend(method_needs(plugin))
        lines.append(f"trains on the data: {'yes' if plugin.tags.trains else 'no'}")
    info: Any = getattr(plugin, "info", None)
    if info is not None:
        lines.append(f"data: {info.summary}; licence {info.licence}")
    return [*lines, ""] if lines else []


def _describe_metric(metric: Metric) -> str:
    direction = "higher" if metric.higher_is_better else "lower"
    doc = docstring_sections(metric.func.__doc__ or "")["summary"]
    return (
        f"metric {metric.name} ({metric.func.__module__}.{metric.func.__qualname__})\n\n"
        f"{doc}\n\nstage: {metric.stage}; {direction} is better; bounds "
        f"[{metric.bounds[0]:g}, {metric.bounds[1]:g}]\n"
    )
