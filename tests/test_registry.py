from functools import partial

import pytest

from recourse_bench import registry
from recourse_bench.api import (
    DuplicateNameError,
    RecourseBenchError,
    RecourseMethod,
    UnknownNameError,
)

from .conftest import install_entry_point


def test_builtins_are_registered():
    assert "german" in registry.available("dataset")
    assert {"logreg", "mlp"} <= set(registry.available("model"))
    assert "wachter" in registry.available("method")
    assert "retrain-seed" in registry.available("shift")
    assert {"coverage", "validity", "cost-l1", "invalidation-rate"} <= set(
        registry.available("metric")
    )


def test_unknown_name_suggests_and_lists_valid_names():
    with pytest.raises(UnknownNameError) as info:
        registry.get("method", "wachtre")
    assert "did you mean 'wachter'" in str(info.value)
    assert "valid methods: " in str(info.value)


def test_duplicate_names_raise():
    with pytest.raises(DuplicateNameError, match="already registered"):

        @registry.register("method", "wachter")
        class Another(RecourseMethod):
            pass


def test_plugin_file_registers_its_plugins(tmp_path):
    path = tmp_path / "plugin.py"
    path.write_text(
        "from recourse_bench import RecourseMethod, register\n"
        "@register('method', 'from-a-file')\n"
        "class FromFile(RecourseMethod):\n"
        "    '''A test plugin.'''\n"
        "    def generate(self, X):\n"
        "        return X\n",
        encoding="utf-8",
    )
    registry.load_plugin_file(path)
    assert registry.get("method", "from-a-file").name == "from-a-file"
    registry.load_plugin_file(path)  # loading again is a no-op, not a duplicate


def test_broken_plugin_file_is_one_clear_error(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("def oops(:\n", encoding="utf-8")
    with pytest.raises(RecourseBenchError, match="failed to import: SyntaxError"):
        registry.load_plugin_file(path)
    with pytest.raises(RecourseBenchError, match="does not exist"):
        registry.load_plugin_file(tmp_path / "missing.py")


def test_code_version_follows_the_source_not_the_location(tmp_path):
    source = "def helper():\n    return {n}\n"
    path = tmp_path / "versioned.py"
    path.write_text(source.format(n=1), encoding="utf-8")
    load = partial(registry.load_plugin_file, require_plugins=False)  # helpers only
    first = registry.code_version(load(path).helper)
    path.write_text(source.format(n=2), encoding="utf-8")
    registry._loaded_files.pop(path.resolve())
    edited = registry.code_version(load(path).helper)
    assert edited != first
    moved = tmp_path / "elsewhere" / "versioned.py"
    moved.parent.mkdir()
    moved.write_text(source.format(n=2), encoding="utf-8")
    assert registry.code_version(load(moved).helper) == edited


def test_code_version_covers_the_helpers_a_plugin_uses():
    import sys

    registry.load_plugins()
    used = registry._modules_used(sys.modules["recourse_bench.models.logreg"])
    assert {"recourse_bench.models._torch", "recourse_bench.seeding"} <= set(used)
    assert "recourse_bench.methods.wachter" not in used


def test_entry_point_plugins_are_loaded(tmp_path, monkeypatch):
    source = (
        "from recourse_bench import RecourseMethod, register\n"
        "@register('method', 'third-party')\n"
        "class ThirdParty(RecourseMethod):\n"
        "    def generate(self, X):\n"
        "        return X\n"
    )
    install_entry_point(tmp_path, "third_party_recourse", source, "third-party")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "third-party" in registry.load_entry_points()
    assert registry.get("method", "third-party").__name__ == "ThirdParty"
