"""Figure style for papers: fonts and sizes for a two-column layout, and per-method styles.

:func:`paper_style` applies the style through :func:`matplotlib.rc_context`, so nothing global is
left changed when it exits. :class:`MethodStyles` gives one colour and one marker per method
label, fixed across reports: the built-in methods have fixed places (:data:`BUILTIN_METHODS`),
a plugin a place hashed from its name, so a method looks the same in every figure of every
report, whichever other methods it is shown with.

The palette is seaborn's colour-blind-safe ``colorblind`` palette (copied here, so that seaborn
is not needed); the heat map's colour map, :data:`SEQUENTIAL_CMAP`, is perceptually uniform and
readable with colour-vision deficiencies.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import matplotlib as mpl
import pandas as pd
from cycler import cycler
from matplotlib.lines import Line2D

ONE_COLUMN = 3.3
"""Width in inches of a figure spanning one column of a two-column paper."""

TWO_COLUMN = 7.0
"""Width in inches of a figure spanning both columns."""

FONT_SIZE = 8.0
SMALL_FONT_SIZE = 7.0

COLORBLIND = (
    "#0173b2",
    "#de8f05",
    "#029e73",
    "#d55e00",
    "#cc78bc",
    "#ca9161",
    "#fbafe4",
    "#949494",
    "#ece133",
    "#56b4e9",
)
"""seaborn's ``colorblind`` palette (10 colours)."""

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
"""Markers given to methods in turn (as many as colours; pairs repeat only after 100 methods)."""

SEQUENTIAL_CMAP = "magma_r"
"""Colour map of the invalidation heat map: light for 0, dark for 1."""

MISSING_COLOR = "#e6e6e6"
"""Fill of a heat-map cell that has no value (no ok result)."""

PAPER_RC: dict[str, Any] = {
    "figure.figsize": (ONE_COLUMN, 2.4),
    "figure.dpi": 100,
    "font.family": "sans-serif",
    "font.size": FONT_SIZE,
    "axes.titlesize": FONT_SIZE,
    "axes.labelsize": FONT_SIZE,
    "xtick.labelsize": SMALL_FONT_SIZE,
    "ytick.labelsize": SMALL_FONT_SIZE,
    "legend.fontsize": SMALL_FONT_SIZE,
    "legend.title_fontsize": FONT_SIZE,
    "legend.frameon": False,
    "figure.titlesize": 9.0,
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.linewidth": 0.4,
    "grid.color": "#d9d9d9",
    "axes.prop_cycle": cycler(color=list(COLORBLIND)),
    "lines.linewidth": 1.2,
    "lines.markersize": 4.0,
    "errorbar.capsize": 1.5,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
}
"""The rc parameters of the paper style (7-9 pt fonts, thin lines, TrueType fonts in PDFs)."""


@contextmanager
def paper_style(rc: Mapping[str, Any] | None = None) -> Iterator[None]:
    """Apply the paper style inside a ``with`` block; rcParams are restored on exit.

    Parameters
    ----------
    rc : mapping, optional
        Extra rc parameters that override :data:`PAPER_RC`.

    Yields
    ------
    None
        Figures created (and saved) inside the block use the style.
    """
    params = dict(PAPER_RC)
    if rc:
        params.update(rc)
    with mpl.rc_context(params):
        yield


def wrap_label(label: str, width: int = 24) -> str:
    """Break a long label into lines of at most about ``width`` characters.

    Breaks only before ``(`` and after a space (a long unbroken word stays whole), and only
    inserts newlines: joining the lines gives back the label.

    Parameters
    ----------
    label : str
        The label, e.g. ``genre(ffn_width=128, n_decoder_layers=4)``.
    width : int
        The wanted line length.

    Returns
    -------
    str
        The label with newlines inserted.
    """
    if len(label) <= width:
        return label
    lines: list[str] = []
    current = ""
    for piece in re.split(r"(?=\()|(?<= )", label):
        if current and len(current.rstrip()) + len(piece.rstrip()) > width:
            lines.append(current)
            current = piece
        else:
            current += piece
    lines.append(current)
    return "\n".join(line for line in lines if line)


BUILTIN_METHODS = (
    "wachter",
    "growing-spheres",
    "nearest-neighbour",
    "roar",
    "probe",
    "trex",
    "genre",
    "dice",
    "ar",
    "face",
    "revise",
    "cchvae",
    "cruds",
    "feature-tweak",
    "rbr",
    "croco",
    "mcer",
    "sns",
    "rnce",
    "betarce",
)
"""The built-in methods in their fixed report order: method i gets colour i and marker i.

A new built-in method is appended here (never inserted), so no method changes its look.
"""

N_STYLES = len(COLORBLIND) * len(MARKERS)


def method_name(label: str) -> str:
    """The method a label belongs to: ``wachter`` for ``wachter(lam=1.0)``."""
    return label.split("(", 1)[0]


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def method_index(name: str) -> int:
    """A method's place in the style table: its built-in position, or a stable hash of its name.

    Plugins (names that are not built in) take a place after the built-ins chosen by a hash of
    the name, so a plugin looks the same in every report, whatever else the report shows.
    """
    if name in BUILTIN_METHODS:
        return BUILTIN_METHODS.index(name)
    spare = N_STYLES - len(BUILTIN_METHODS)
    return len(BUILTIN_METHODS) + _stable_hash(name) % spare


def label_style(label: str) -> tuple[str, str]:
    """The (colour, marker) of a method label, the same in every report.

    Method i takes colour ``i % 10`` and marker ``(i + i // 10) % 10``, so (colour, marker)
    pairs stay distinct for 100 methods. A label with parameters (``wachter(lam=1.0)``) keeps
    its method's colour and takes another marker, chosen by a stable hash of the label.
    """
    name = method_name(label)
    i = method_index(name)
    marker = (i + i // len(COLORBLIND)) % len(MARKERS)
    if label != name:
        marker = (marker + 1 + _stable_hash(label) % (len(MARKERS) - 1)) % len(MARKERS)
    return COLORBLIND[i % len(COLORBLIND)], MARKERS[marker]


def label_order(label: str) -> tuple[int, str, str]:
    """Sort key of method labels: built-in methods in their order, then plugins by name."""
    name = method_name(label)
    builtin = name in BUILTIN_METHODS
    return (BUILTIN_METHODS.index(name) if builtin else len(BUILTIN_METHODS), name, label)


@dataclass(frozen=True)
class MethodStyles:
    """One colour and one marker per method label, the same in every figure and every report.

    The look of a label depends on the label alone (:func:`label_style`): the built-in methods
    have fixed places, a plugin a place hashed from its name. Build it once per report from all
    results with :meth:`from_results` (or from the labels with :meth:`from_labels`) to fix the
    order of methods in legends and heat maps: built-in methods in their order, then plugins by
    name (:func:`label_order`).

    Attributes
    ----------
    labels : tuple of str
        The method labels in the report's order.
    colors : dict
        Method label -> colour (hex string).
    markers : dict
        Method label -> matplotlib marker.
    """

    labels: tuple[str, ...]
    colors: dict[str, str] = field(default_factory=dict)
    markers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> MethodStyles:
        """Styles for the distinct ``labels``, in the report's order (missing values ignored)."""
        unique = sorted({str(label) for label in labels if isinstance(label, str)}, key=label_order)
        looks = {label: label_style(label) for label in unique}
        colors = {label: look[0] for label, look in looks.items()}
        markers = {label: look[1] for label, look in looks.items()}
        return cls(tuple(unique), colors, markers)

    @classmethod
    def from_results(cls, results: pd.DataFrame) -> MethodStyles:
        """Styles for every ``method_label`` in a results frame (whatever its status)."""
        if "method_label" not in results.columns:
            return cls.from_labels([])
        return cls.from_labels(results["method_label"].dropna().unique())

    def color(self, label: str) -> str:
        """The colour of a method label."""
        return self.colors.get(label) or label_style(label)[0]

    def marker(self, label: str) -> str:
        """The marker of a method label."""
        return self.markers.get(label) or label_style(label)[1]

    def order(self, labels: Iterable[str]) -> list[str]:
        """The distinct ``labels`` in the report's order."""
        present = {str(label) for label in labels if isinstance(label, str)}
        return sorted(present, key=label_order)

    def handles(self, labels: Iterable[str], wrap: int = 28) -> list[Line2D]:
        """Legend handles (marker and line in the method's colour) for ``labels``.

        Parameters
        ----------
        labels : iterable of str
            The methods to show, in any order; they are put in the report's order.
        wrap : int
            Long labels are wrapped at about this many characters.

        Returns
        -------
        list of Line2D
            One handle per method, labelled with the (wrapped) method label.
        """
        return [
            Line2D(
                [],
                [],
                color=self.color(label),
                marker=self.marker(label),
                linestyle="-",
                label=wrap_label(label, wrap),
            )
            for label in self.order(labels)
        ]
